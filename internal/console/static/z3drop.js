// Drag and drop on a Z3 folder: files dropped onto the folder view are
// uploaded into it, each through a presigned upload URL the console asks
// the API for (POST data-presign, with the session's CSRF token), with its
// progress and, when one fails, the reason next to its name. Without this
// script (or a mouse) the upload form below does the same, one file at a
// time.
const zone = document.getElementById('dropzone');
const list = document.getElementById('uploads');
const status = document.getElementById('drop-status');
if (zone && list && status && window.XMLHttpRequest && window.FormData) {
  zone.hidden = false;
  // The whole page is the drop target, so a file dropped a little outside
  // the box does not make the browser navigate away to it.
  const over = (e) => {
    if (!e.dataTransfer || !Array.from(e.dataTransfer.types || []).includes('Files')) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    zone.classList.add('over');
  };
  document.addEventListener('dragenter', over);
  document.addEventListener('dragover', over);
  document.addEventListener('dragleave', (e) => {
    if (e.target === document.documentElement || e.relatedTarget === null) zone.classList.remove('over');
  });
  document.addEventListener('drop', (e) => {
    if (!e.dataTransfer || !e.dataTransfer.files || e.dataTransfer.files.length === 0) return;
    e.preventDefault();
    zone.classList.remove('over');
    const folders = new Set();
    for (const item of Array.from(e.dataTransfer.items || [])) {
      const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
      if (entry && entry.isDirectory) folders.add(entry.name);
    }
    uploadAll(Array.from(e.dataTransfer.files), folders);
  });

  // row adds a file's line: its name, a progress bar and a message.
  const row = (name) => {
    const li = document.createElement('li');
    const label = document.createElement('strong');
    label.textContent = name;
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute('aria-label', 'Upload of ' + name);
    const msg = document.createElement('span');
    msg.className = 'hint';
    li.append(label, ' ', bar, ' ', msg);
    list.append(li);
    return {
      progress: (p) => { bar.value = p; },
      done: () => { bar.value = 100; msg.textContent = 'Uploaded.'; },
      fail: (text) => {
        bar.remove();
        msg.className = 'problem';
        msg.setAttribute('role', 'alert');
        msg.textContent = text;
      },
    };
  };

  // answer reads the console's or the API's JSON answer.
  const answer = async (res) => {
    try {
      return await res.json();
    } catch {
      return { message: res.status === 403 ? 'Refused: sign in again or reload the page.' : 'The server answered ' + res.status + '.' };
    }
  };

  const presign = async (file) => {
    const body = new URLSearchParams({ csrf: zone.dataset.csrf, name: file.name });
    const res = await fetch(zone.dataset.presign, { method: 'POST', body, credentials: 'same-origin' });
    const out = await answer(res);
    if (!res.ok || !out.url) throw new Error(out.message || 'No upload URL: the server answered ' + res.status + '.');
    return out.url;
  };

  // put sends the file with XMLHttpRequest: fetch reports no upload progress.
  const put = (url, file, line) => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) line.progress(Math.round((e.loaded / e.total) * 100));
    });
    xhr.addEventListener('load', () => {
      if (xhr.status < 300) return resolve();
      let msg = 'The upload was refused (' + xhr.status + ').';
      try {
        const out = JSON.parse(xhr.responseText);
        if (out.message) msg = out.message;
      } catch { /* not JSON: keep the status */ }
      reject(new Error(msg));
    });
    xhr.addEventListener('error', () => reject(new Error('The connection failed during the upload.')));
    xhr.send(file);
  });

  const uploadAll = async (files, folders) => {
    let ok = 0;
    let failed = 0;
    status.textContent = 'Uploading ' + files.length + ' file' + (files.length === 1 ? '' : 's') + '.';
    for (const file of files) {
      const line = row(file.name);
      if (folders.has(file.name)) {
        line.fail('A folder: drop the files inside it instead.');
        failed++;
        continue;
      }
      try {
        await put(await presign(file), file, line);
        line.done();
        ok++;
      } catch (err) {
        line.fail(err.message);
        failed++;
      }
    }
    if (failed === 0) {
      // The listing shows them: reload the folder with the outcome.
      location.assign(zone.dataset.folder + '?' + new URLSearchParams({ done: 'Uploaded ' + ok + ' file' + (ok === 1 ? '' : 's') + '.' }));
      return;
    }
    status.textContent = ok + ' uploaded, ' + failed + ' failed. ';
    const again = document.createElement('a');
    again.href = zone.dataset.folder;
    again.textContent = 'Show the folder';
    status.append(again);
  };
}
