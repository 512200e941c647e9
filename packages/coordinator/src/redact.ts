/**
 * Removes what looks like a credential from text that came out of a command or a remote answer before it reaches
 * a log line, an error message or an API answer: `Authorization:`/`Bearer`/`Basic` values, `token=`/`secret=`/
 * `password=`/`api_key=`-style pairs (also as JSON keys), URL userinfo, and the known secrets passed in.
 */
export function redactSecrets(text: string, known: readonly string[] = []): string {
  let out = text;
  for (const secret of known) if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  return out
    .replace(/\b(authorization|proxy-authorization)(["']?\s*[:=]\s*["']?)[^\r\n"',}]+/gi, '$1$2[redacted]')
    .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]')
    .replace(
      /\b([a-z0-9_-]*(?:token|secret|password|passwd|api[_-]?key|access[_-]?key|credential)s?)(["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi,
      '$1$2[redacted]',
    )
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi, '$1[redacted]@');
}
