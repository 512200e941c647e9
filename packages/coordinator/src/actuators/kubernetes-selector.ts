/** Label selectors and pod names as the Kubernetes API defines them (no client library needed). */

/** A pod name (DNS-1123 subdomain): a victim id that is not one never reaches a path. */
const POD_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface LabelSelectorLike {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** A pod name is a DNS-1123 subdomain: anything else never reaches a request path. */
export function isPodName(id: string): boolean {
  return id.length <= 253 && POD_NAME.test(id);
}

/** The string form of a LabelSelector (what `kubectl get pods -l` takes and the scale subresource reports). */
export function selectorString(selector: LabelSelectorLike | undefined): string {
  const parts = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort().join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

/** Whether labels match a LabelSelector (no selector matches nothing, as for a Deployment it cannot be empty). */
export function matchesSelector(labels: Record<string, string>, selector: LabelSelectorLike | undefined): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
    if (!['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(e.operator)) return false;
  }
  return true;
}

const LABEL_KEY =
  '(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const LABEL_VALUE = '(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?';
const REQUIREMENT = new RegExp(
  `^(?:!?${LABEL_KEY}|${LABEL_KEY}\\s*(?:==?|!=)\\s*${LABEL_VALUE}|${LABEL_KEY}\\s+(?:in|notin)\\s*\\(\\s*${LABEL_VALUE}(?:\\s*,\\s*${LABEL_VALUE})*\\s*\\))$`,
);

/** Whether `s` is a label selector in string form (equality- and set-based requirements, comma-separated). */
export function isLabelSelector(s: string): boolean {
  if (s.length === 0 || s.length > 1024) return false;
  const requirements = s.split(/,(?![^(]*\))/);
  return requirements.every((r) => REQUIREMENT.test(r.trim()));
}
