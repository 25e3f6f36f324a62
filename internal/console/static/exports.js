// Follows a running export on its page: asks the console for the job's
// status every second, shows its progress, and reloads the page when the
// job ends (its files or its error). Without this script, reload by hand.
const el = document.getElementById('export-progress');
if (el && el.dataset.poll) {
  const poll = async () => {
    try {
      const res = await fetch(el.dataset.poll, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      if (res.ok) {
        const s = await res.json();
        if (s.status !== 'running') {
          location.reload();
          return;
        }
        el.textContent = s.progress;
      } else if (res.status === 404) {
        location.reload();
        return;
      }
    } catch {
      // A dropped request: try again on the next tick.
    }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}
