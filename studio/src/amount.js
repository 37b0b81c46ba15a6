// Amounts of the chain's token as people read and type them. Plain JavaScript with JSDoc types,
// so the browser tests write amounts exactly as the pages do.

/**
 * Plancks as the token, with only the decimals that matter: `12.25 PRV`.
 * @param {{ decimals: number, symbol: string }} token
 * @param {bigint} plancks
 */
export function formatAmount(token, plancks) {
  const unit = 10n ** BigInt(token.decimals);
  const whole = plancks / unit;
  const fraction = (plancks % unit).toString().padStart(token.decimals, "0").replace(/0+$/, "");
  const wholeText = whole.toLocaleString("en-US");
  return `${fraction ? `${wholeText}.${fraction}` : wholeText} ${token.symbol}`;
}

/**
 * A typed amount such as `12` or `0.5` as plancks; an error in words otherwise.
 * @param {{ decimals: number, symbol: string }} token
 * @param {string} text
 */
export function parseAmount(token, text) {
  const trimmed = text.trim();
  const match = /^(\d+)(?:\.(\d*))?$/.exec(trimmed);
  if (!match) throw new Error(`“${text}” is not an amount of ${token.symbol}`);
  const fraction = match[2] ?? "";
  if (fraction.length > token.decimals) {
    throw new Error(`${token.symbol} has ${token.decimals} decimals at most`);
  }
  return BigInt(match[1]) * 10n ** BigInt(token.decimals) + BigInt(fraction.padEnd(token.decimals, "0") || "0");
}
