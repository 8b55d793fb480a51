import { appendFile } from 'node:fs/promises';

/**
 * Security alerts: events someone must look at now, not only find in the audit trail later
 * (break-the-glass first; the anomaly detection issue adds more). Each is appended to
 * `alerts.ndjson` in the data dir (owner-only, like the store) and, when configured, POSTed as
 * JSON to a webhook (a SIEM, a pager). Alerts carry references (user, patient), never clinical
 * content or the free-text reason, which stays in the audit record. Raising never fails the
 * request that caused it: a failed delivery is reported through `onError`.
 */
export interface Alert {
  kind: string;
  severity: 'high' | 'medium' | 'low';
  /** FHIR instant. */
  at: string;
  /** The audit identifier of who caused it. */
  who: string;
  /** References the alert is about (`Patient/7`). */
  about?: string[];
  /** Non-PHI detail, e.g. until when emergency access lasts. */
  detail?: string;
}

export interface AlertSinkOptions {
  file: string;
  webhook?: string;
  onError?: (where: 'file' | 'webhook', err: unknown) => void;
}

export class Alerts {
  private readonly options: AlertSinkOptions;
  private pending: Promise<void> = Promise.resolve();

  constructor(options: AlertSinkOptions) {
    this.options = options;
  }

  raise(alert: Alert): void {
    const line = JSON.stringify(alert);
    // In order, one at a time: the file stays one alert per line.
    this.pending = this.pending.then(() => this.deliver(line));
  }

  /** Resolves when every alert raised so far was delivered (or failed). */
  flush(): Promise<void> {
    return this.pending;
  }

  private async deliver(line: string): Promise<void> {
    const { file, webhook, onError = () => {} } = this.options;
    try {
      await appendFile(file, line + '\n', { mode: 0o600 });
    } catch (err) {
      onError('file', err);
    }
    if (!webhook) return;
    try {
      const res = await fetch(webhook, { method: 'POST', headers: { 'content-type': 'application/json' }, body: line, signal: AbortSignal.timeout(5000) });
      if (!res.ok) onError('webhook', new Error(`webhook answered ${res.status}`));
    } catch (err) {
      onError('webhook', err);
    }
  }
}
