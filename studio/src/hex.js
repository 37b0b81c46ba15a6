// `0x` hex, as polkadot-api and the node's RPC write bytes. Adapters come as megabytes of hex,
// so no regular expression with a repeated group runs over a whole string: V8 overflows its
// stack there.

/** @param {string} hex */
export function fromHex(hex) {
  const digits = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (digits.length % 2 !== 0 || /[^0-9a-fA-F]/.test(digits)) throw new Error(`“${hex.slice(0, 80)}” is not hex`);
  const bytes = new Uint8Array(digits.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(digits.substr(2 * i, 2), 16);
  return bytes;
}

/** @param {Uint8Array} bytes */
export function toHex(bytes) {
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
