// What a token may be. Checked wherever a token enters (CLI, API), so a token
// sealed once can always be given again, on a prompt too.
export const MAX_TOKEN_LENGTH = 4096;

/** Why this token is refused, or null. Never quotes the token. */
export function tokenProblem(token: string): string | null {
  if (token.length === 0) return 'the token is empty';
  if (token.trim().length === 0) return 'the token is only white space';
  if (/[\n\r\0]/.test(token)) return 'the token contains a newline, carriage return or NUL (one trailing newline is stripped from files and stdin)';
  if (token.length > MAX_TOKEN_LENGTH) return `the token is longer than ${MAX_TOKEN_LENGTH} characters`;
  return null;
}
