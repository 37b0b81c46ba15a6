// `0x` hex, as polkadot-api and the node's RPC write bytes.

/** @param {string} hex */
export function fromHex(hex) {
  const digits = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`“${hex}” is not hex`);
  return Uint8Array.from(digits.match(/../g) ?? [], (b) => parseInt(b, 16));
}

/** @param {Uint8Array} bytes */
export function toHex(bytes) {
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
