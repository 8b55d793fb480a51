/**
 * What a browser does on the sign-in pages, no more: keeps cookies per path, follows redirects
 * until it leaves the server (the app's redirect URI), and submits the page's forms with the
 * fields a user fills in. Used to drive the authorization pages with a real OAuth client library.
 */
export class Browser {
  private readonly cookies = new Map<string, { name: string; value: string; path: string }>();
  /** The page last loaded (HTML), and its URL. */
  html = '';
  url = '';
  status = 0;

  /** GET `url`, following redirects within `origin`; stops at a redirect elsewhere and returns its Location. */
  async open(url: string, origin: string): Promise<string | undefined> {
    return this.follow(await this.fetch(url, { method: 'GET' }), url, origin);
  }

  /** Submits the form whose action ends with `actionSuffix`, with its hidden fields plus `fields`. */
  async submit(actionSuffix: string, fields: Record<string, string | string[]>, origin: string): Promise<string | undefined> {
    const forms = [...this.html.matchAll(/<form method="(get|post)" action="([^"]+)">([\s\S]*?)<\/form>/g)];
    const form = forms.find((f) => decode(f[2]).endsWith(actionSuffix));
    if (!form) throw new Error(`No form ending ${actionSuffix} on ${this.url}: ${this.html.slice(0, 400)}`);
    const body = new URLSearchParams();
    for (const m of form[3].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) body.append(m[1], decode(m[2]));
    for (const [k, v] of Object.entries(fields)) for (const one of [v].flat()) body.append(k, one);
    const action = new URL(decode(form[2]), this.url).toString();
    if (form[1] === 'get') return this.open(`${action}?${body}`, origin);
    const res = await this.fetch(action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    return this.follow(res, action, origin);
  }

  /** The checkbox values on the page's consent form. */
  checkboxes(): string[] {
    return [...this.html.matchAll(/<input type="checkbox" name="scope" value="([^"]+)" checked>/g)].map((m) => decode(m[1]));
  }

  async post(url: string, body: URLSearchParams): Promise<Response> {
    return this.fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }

  private async follow(res: Response, url: string, origin: string): Promise<string | undefined> {
    for (let hops = 0; hops < 20; hops++) {
      if (res.status < 300 || res.status >= 400) {
        this.status = res.status;
        this.url = url;
        this.html = await res.text();
        return undefined;
      }
      const next = new URL(res.headers.get('location')!, url).toString();
      if (!next.startsWith(origin)) return next;
      url = next;
      res = await this.fetch(url, { method: 'GET' });
    }
    throw new Error('Too many redirects');
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(url);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const sc of res.headers.getSetCookie()) this.store(sc);
    return res;
  }

  private store(setCookie: string): void {
    const [pair, ...attrs] = setCookie.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = '/';
    let expired = value === '';
    for (const a of attrs) {
      const [k, v] = a.split('=');
      if (k.toLowerCase() === 'path') path = v;
      if (k.toLowerCase() === 'expires' && new Date(v).getTime() < Date.now()) expired = true;
    }
    const key = `${name}|${path}`;
    if (expired) this.cookies.delete(key);
    else this.cookies.set(key, { name, value, path });
  }

  private cookieHeader(url: string): string {
    const p = new URL(url).pathname;
    return [...this.cookies.values()].filter((c) => c.path === '/' || p === c.path || p.startsWith(`${c.path}/`)).map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

function decode(s: string): string {
  return s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
}
