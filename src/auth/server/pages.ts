import { escapeHtml } from './provider.ts';

/**
 * The authorization server's pages, rendered on the server: no script at all, one stylesheet
 * from this server, forms posting back here with a CSRF token. The Content-Security-Policy
 * (see pageHeaders) allows nothing else.
 */
export interface Page {
  title: string;
  body: string;
}

const e = escapeHtml;

export function render(page: Page, stylesheet: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${e(page.title)} - Bastion</title><link rel="stylesheet" href="${e(stylesheet)}"></head>` +
    `<body><main><h1>${e(page.title)}</h1>${page.body}</main></body></html>`;
}

/**
 * CSP: nothing runs, nothing loads but our stylesheet and inline images (the enrolment QR code);
 * forms go back to this server, and (after approval) redirect to the client, which form-action
 * must allow for browsers that check redirects after a form post.
 */
export function pageHeaders(formTargets: string[]): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; style-src 'self'; img-src data:; form-action 'self' ${formTargets.join(' ')}; frame-ancestors 'none'; base-uri 'none'`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  };
}

const hidden = (csrf: string) => `<input type="hidden" name="csrf" value="${e(csrf)}">`;
const message = (text?: string) => (text ? `<p class="message" role="alert">${e(text)}</p>` : '');

export function loginPage(action: string, csrf: string, client: string, error?: string): Page {
  return {
    title: 'Sign in',
    body: `<p>${e(client)} asks to access health records on your behalf.</p>${message(error)}` +
      `<form method="post" action="${e(action)}">${hidden(csrf)}` +
      `<label>Username <input name="username" autocomplete="username" required maxlength="128"></label>` +
      `<label>Password <input name="password" type="password" autocomplete="current-password" required maxlength="1024"></label>` +
      `<button type="submit">Sign in</button></form>${cancelForm(action, csrf)}`,
  };
}

export function newPasswordPage(action: string, csrf: string, error?: string): Page {
  return {
    title: 'Choose your password',
    body: `<p>You signed in with a one-time password. Choose your own: at least 12 characters.</p>${message(error)}` +
      `<form method="post" action="${e(action)}">${hidden(csrf)}` +
      `<label>New password <input name="password" type="password" autocomplete="new-password" required minlength="12" maxlength="1024"></label>` +
      `<label>Again <input name="confirm" type="password" autocomplete="new-password" required minlength="12" maxlength="1024"></label>` +
      `<button type="submit">Save</button></form>${cancelForm(action, csrf)}`,
  };
}

export function totpPage(action: string, csrf: string, error?: string): Page {
  return {
    title: 'Verification code',
    body: `<p>Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>${message(error)}` +
      `<form method="post" action="${e(action)}">${hidden(csrf)}` +
      `<label>Code <input name="code" autocomplete="one-time-code" inputmode="numeric" required maxlength="32"></label>` +
      `<button type="submit">Verify</button></form>${cancelForm(action, csrf)}`,
  };
}

export function enrolPage(action: string, csrf: string, qrSvg: string, secret: string, error?: string): Page {
  const img = `data:image/svg+xml;base64,${Buffer.from(qrSvg).toString('base64')}`;
  return {
    title: 'Set up two-step verification',
    body: `<p>Your role requires a second factor. Scan this code with an authenticator app, then enter the code it shows.</p>${message(error)}` +
      `<img src="${img}" alt="QR code for your authenticator app" width="200" height="200">` +
      `<p>Or enter this key by hand: <code>${e(secret)}</code></p>` +
      `<form method="post" action="${e(action)}">${hidden(csrf)}` +
      `<label>Code <input name="code" autocomplete="one-time-code" inputmode="numeric" required maxlength="6"></label>` +
      `<button type="submit">Confirm</button></form>${cancelForm(action, csrf)}`,
  };
}

export function recoveryCodesPage(action: string, csrf: string, codes: string[]): Page {
  return {
    title: 'Recovery codes',
    body: `<p>Keep these codes somewhere safe. Each signs you in once if you lose your authenticator. They are not shown again.</p>` +
      `<ul class="codes">${codes.map((c) => `<li><code>${e(c)}</code></li>`).join('')}</ul>` +
      `<form method="post" action="${e(action)}">${hidden(csrf)}<button type="submit">Continue</button></form>`,
  };
}

export interface PatientChoice {
  id: string;
  label: string;
}

export function patientPickerPage(searchAction: string, chooseAction: string, csrf: string, query: string, patients: PatientChoice[], error?: string): Page {
  const list = patients.length === 0
    ? (query ? '<p>No patient matches.</p>' : '')
    : `<form method="post" action="${e(chooseAction)}">${hidden(csrf)}<fieldset><legend>Patients</legend>` +
      patients.map((p, i) => `<label><input type="radio" name="patient" value="${e(p.id)}"${i === 0 ? ' required' : ''}> ${e(p.label)}</label>`).join('') +
      `</fieldset><button type="submit">Choose</button></form>`;
  return {
    title: 'Choose a patient',
    body: `<p>The app will work with the record of the patient you choose.</p>${message(error)}` +
      `<form method="get" action="${e(searchAction)}"><label>Name <input name="q" value="${e(query)}" maxlength="100"></label>` +
      `<button type="submit">Search</button></form>${list}${cancelForm(chooseAction, csrf)}`,
  };
}

export interface ScopeChoice {
  scope: string;
  description: string;
  /** False: asked for, but neither the app's registration nor your role allows it. */
  grantable: boolean;
}

export function consentPage(action: string, csrf: string, client: string, scopes: ScopeChoice[], patientLabel?: string): Page {
  const items = scopes.map((s) => s.grantable
    ? `<li><label><input type="checkbox" name="scope" value="${e(s.scope)}" checked> ${e(s.description)} <code>${e(s.scope)}</code></label></li>`
    : `<li class="refused">${e(s.description)} <code>${e(s.scope)}</code>: not available</li>`).join('');
  return {
    title: 'Allow access?',
    body: `<p><strong>${e(client)}</strong> asks for:</p>${patientLabel ? `<p>Patient: <strong>${e(patientLabel)}</strong></p>` : ''}` +
      `<form method="post" action="${e(action)}">${hidden(csrf)}<ul class="scopes">${items}</ul>` +
      `<button type="submit" name="decision" value="allow">Allow</button> <button type="submit" name="decision" value="deny">Deny</button></form>`,
  };
}

function cancelForm(action: string, csrf: string): string {
  const abort = action.replace(/\/[^/]+$/, '/abort');
  return `<form method="post" action="${e(abort)}">${hidden(csrf)}<button type="submit" class="secondary">Cancel</button></form>`;
}

export const stylesheet = `body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:28rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}
label{display:block;margin:.75rem 0}input[type=text],input:not([type]),input[type=password]{display:block;width:100%;padding:.5rem;margin-top:.25rem;box-sizing:border-box}
button{padding:.5rem 1rem;margin-top:.75rem}.secondary{background:none;border:none;text-decoration:underline;cursor:pointer}
.message{color:#a40000}.refused{color:#777}ul{padding-left:1rem}fieldset{border:1px solid #ccc}`;
