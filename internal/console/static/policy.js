// Validates the policy editor as you type: the console asks the server,
// which runs the API's own policy validation, and shows its message (and
// the rule it names) next to the field. The form still validates on
// submit without this script.
const field = document.getElementById('policy');
const live = document.getElementById('policy-live');
const form = field && field.form;
if (field && live && form) {
  const csrf = form.querySelector('input[name="csrf"]').value;
  let timer, seq = 0;
  const check = async () => {
    const mine = ++seq;
    const body = new URLSearchParams({ csrf, policy: field.value });
    let out;
    try {
      const res = await fetch('/console/roles/validate', { method: 'POST', body, credentials: 'same-origin' });
      if (!res.ok) return;
      out = await res.json();
    } catch {
      return; // offline: the submit still validates
    }
    if (mine !== seq) return; // a later keystroke's answer wins
    const serverError = document.getElementById('problem');
    if (serverError) serverError.remove();
    if (out.ok) {
      live.textContent = out.warnings && out.warnings.length ? 'Valid, with warnings: ' + out.warnings.join('; ') : 'Valid policy.';
      live.className = 'hint';
      field.removeAttribute('aria-invalid');
    } else {
      live.textContent = (out.rule ? 'Rule ' + out.rule + ': ' : '') + out.message;
      live.className = 'problem';
      field.setAttribute('aria-invalid', 'true');
    }
  };
  field.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
}
