"""Local stand-ins for the Hugging Face Hub: a pre-filled cache and a loopback HTTP server.

The server answers ``HEAD|GET /{repo_id}/resolve/{revision}/{filename}`` with the headers
``huggingface_hub`` reads (X-Repo-Commit, ETag, Content-Length), as the Hub does.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Optional, Tuple


def prefill_cache(cache_dir: Path, repo_id: str, revision: str, filename: str, data: bytes) -> Path:
    """Write ``data`` where ``hf_hub_download`` looks for it (models--org--name/snapshots/<rev>/)."""
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    snap = repo / "snapshots" / revision / filename
    snap.parent.mkdir(parents=True, exist_ok=True)
    snap.symlink_to(blob)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snap


@dataclass
class HubFile:
    data: bytes
    commit: str
    truncate_to: Optional[int] = None  # send fewer bytes than Content-Length announces


@dataclass
class HubStandIn:
    files: Dict[Tuple[str, str], HubFile] = field(default_factory=dict)  # (repo_id, filename)
    requests: list = field(default_factory=list)
    server: Optional[ThreadingHTTPServer] = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo_id: str, filename: str, data: bytes, commit: str, truncate_to: Optional[int] = None):
        self.files[(repo_id, filename)] = HubFile(data, commit, truncate_to)

    def start(self) -> "HubStandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _lookup(self):
                standin.requests.append((self.command, self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return None
                repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                f = standin.files.get((repo_id, filename))
                if f is None or revision not in ("main", f.commit):
                    return None
                return f

            def _headers(self, f: Optional[HubFile]) -> None:
                if f is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", f.commit)
                self.send_header("ETag", '"%s"' % hashlib.sha256(f.data).hexdigest())
                self.send_header("Content-Length", str(len(f.data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()

            def do_HEAD(self):
                self._headers(self._lookup())

            def do_GET(self):
                f = self._lookup()
                self._headers(f)
                if f is not None:
                    body = f.data if f.truncate_to is None else f.data[: f.truncate_to]
                    self.wfile.write(body)
                    if f.truncate_to is not None:
                        self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
