import { createHash } from 'node:crypto';
import aws4 from 'aws4';

/** Where checkpoints are kept under S3 Object Lock (configuration `auditCheckpointS3`). */
export interface S3LockSettings {
  bucket: string;
  region: string;
  /** An S3-compatible endpoint (path-style); default: AWS's virtual-hosted endpoint of the bucket. */
  endpoint?: string;
  /** Prefix of the object keys, e.g. `bastion/prod/`. */
  prefix?: string;
  /** COMPLIANCE (nobody, the root account included, can shorten or remove it) or GOVERNANCE. */
  mode: 'COMPLIANCE' | 'GOVERNANCE';
  /** Days each checkpoint object is locked for. */
  retainDays: number;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Credentials from the standard AWS environment variables; undefined when they are not set. */
export function s3CredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Credentials | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
}

/**
 * Copies each signed checkpoint into an S3 bucket with Object Lock, one object per checkpoint,
 * locked until its retention ends: a write-once place outside the server, so a rewritten trail
 * cannot be matched by rewriting the checkpoints too. Requests are signed with AWS Signature
 * Version 4 (the aws4 library) and sent with fetch; the bucket must have Object Lock enabled.
 */
export class S3CheckpointCopy {
  private readonly settings: S3LockSettings;
  private readonly credentials: S3Credentials;

  constructor(settings: S3LockSettings, credentials: S3Credentials) {
    this.settings = settings;
    this.credentials = credentials;
  }

  async write(checkpoint: { count: number; at: string }, body: string): Promise<void> {
    const key = `${this.settings.prefix ?? ''}checkpoint-${String(checkpoint.count).padStart(12, '0')}-${checkpoint.at}.json`;
    const retainUntil = new Date(Date.parse(checkpoint.at) + this.settings.retainDays * 86_400_000).toISOString();
    const target = this.urlOf(key);
    const request = aws4.sign({
      host: target.host,
      path: `${target.pathname}`,
      method: 'PUT',
      service: 's3',
      region: this.settings.region,
      protocol: target.protocol,
      body,
      headers: {
        'content-type': 'application/json',
        // S3 takes Object Lock settings only with an integrity check of the body.
        'content-md5': createHash('md5').update(body).digest('base64'),
        'x-amz-object-lock-mode': this.settings.mode,
        'x-amz-object-lock-retain-until-date': retainUntil,
      },
    }, this.credentials);
    const response = await fetch(target, { method: 'PUT', headers: request.headers as Record<string, string>, body, signal: AbortSignal.timeout(15_000) });
    if (!response.ok) {
      // The status and S3's error code only: the body may echo request details.
      const code = /<Code>([^<]{1,64})<\/Code>/.exec(await response.text())?.[1] ?? 'no code';
      throw new Error(`S3 refused the checkpoint copy: ${response.status} ${code}`);
    }
  }

  private urlOf(key: string): URL {
    const encoded = key.split('/').map(encodeURIComponent).join('/');
    if (this.settings.endpoint) return new URL(`${this.settings.endpoint.replace(/\/+$/, '')}/${this.settings.bucket}/${encoded}`);
    return new URL(`https://${this.settings.bucket}.s3.${this.settings.region}.amazonaws.com/${encoded}`);
  }
}
