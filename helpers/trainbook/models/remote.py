"""Model code fetched from the internet: an https URL of a .py file, or a GitHub Gist by id.

    fetched = fetch("gist:1a2b3c@4d5e6f")   # fetched.path: a cached folder with model.py (+ config.json)

Gists come through the Gist REST API, `GET /gists/<id>` or `GET /gists/<id>/<revision>`, at
TRAINBOOK_GIST_API_URL (default https://api.github.com); GITHUB_TOKEN, when set, is sent to that
API only (5,000 instead of 60 requests per hour). The gist's .py files and config.json are cached
in TRAINBOOK_CACHE_DIR (default ~/.cache/trainbook)/models/gist-<id>-<revision>/, and a pinned
revision found there is used without a request. The sha256 of every file is printed and
recorded. Requests time out after TRAINBOOK_FETCH_TIMEOUT seconds (default 30).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

from .errors import ModelSourceError
from .sources import CONFIG_FILE

GIST_API_URL = "https://api.github.com"
MODEL_FILE = "model.py"
MANIFEST = ".trainbook-fetch.json"  # what was fetched, with sha256s; a changed file means fetch again
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclasses.dataclass
class Fetched:
    kind: str                  # gist | url
    path: Path                 # gist: the cached folder; url: the cached .py file
    url: str                   # the API or file URL
    revision: str | None       # gist revision (a commit sha)
    sha256: dict               # file name -> sha256 hex digest
    cached: bool               # served from the cache without a request

    def record(self) -> dict:
        return {"url": self.url, "revision": self.revision, "sha256": dict(self.sha256), "cached": self.cached}


def fetch(source: str, timeout: float | None = None) -> Fetched:
    """Fetch "gist:<id>[@<revision>]" or an https URL of a .py file into the cache.

    Raises:
        ModelSourceError: a malformed source, HTTP 404, a rate limit (403/429 with
            x-ratelimit-remaining: 0), a timeout, an unreachable host, or a Gist without model.py.
    """
    timeout = float(os.environ.get("TRAINBOOK_FETCH_TIMEOUT", 30)) if timeout is None else timeout
    if source.startswith("gist:"):
        gist_id, revision = parse_gist(source)
        return fetch_gist(gist_id, revision, timeout)
    return fetch_url(source, timeout)


def parse_gist(source: str) -> tuple[str, str | None]:
    """gist:<id>[@<revision>] -> (id, revision); the id may be given as the gist's web address."""
    body, _, revision = source[len("gist:"):].partition("@")
    gist_id = body.rstrip("/").rsplit("/", 1)[-1]
    if not re.fullmatch(r"[0-9A-Za-z]+", gist_id) or (revision and not re.fullmatch(r"[0-9a-fA-F]{4,40}", revision)):
        raise ModelSourceError(f"{source}: not a Gist reference. HINT: write gist:<id> or gist:<id>@<revision>, "
                               "where <id> is the last part of https://gist.github.com/<user>/<id>")
    return gist_id, revision or None


def fetch_gist(gist_id: str, revision: str | None, timeout: float) -> Fetched:
    name = f"gist:{gist_id}" + (f"@{revision}" if revision else "")
    api = os.environ.get("TRAINBOOK_GIST_API_URL", GIST_API_URL).rstrip("/")
    url = f"{api}/gists/{gist_id}" + (f"/{revision}" if revision else "")
    if revision:
        cached = _cached(cache_root() / f"gist-{gist_id}-{revision}", "gist", url, revision)
        if cached is not None:
            _announce(name, cached)
            return cached
    try:
        gist = json.loads(_get(url, name, timeout, api=True))
    except json.JSONDecodeError as e:
        raise ModelSourceError(f"{name}: {url} did not answer JSON ({e}). HINT: check TRAINBOOK_GIST_API_URL") from None
    files = gist.get("files") if isinstance(gist, dict) else None
    if not isinstance(files, dict) or MODEL_FILE not in files:
        found = ", ".join(sorted(files)) if isinstance(files, dict) and files else "no files"
        raise ModelSourceError(f"{name}: the gist has no {MODEL_FILE} (it holds {found}). HINT: add the model class "
                               f"to a file named {MODEL_FILE} in the gist (and its arguments to {CONFIG_FILE}), or "
                               "load one file by its raw URL")
    history = gist.get("history") or [{}]
    revision = revision or history[0].get("version")
    contents = {}
    for filename, entry in sorted(files.items()):
        if not (filename.endswith(".py") or filename == CONFIG_FILE):
            continue
        if Path(filename).name != filename or filename.startswith("."):
            raise ModelSourceError(f"{name}: unsafe file name {filename!r} in the gist")
        if entry.get("truncated") or entry.get("content") is None:  # over 1 MB: the API gives only a part
            contents[filename] = _get(entry["raw_url"], name, timeout)
        else:
            contents[filename] = entry["content"].encode("utf-8")
    revision = revision or hashlib.sha256(b"".join(contents.values())).hexdigest()[:40]
    fetched = _store(cache_root() / f"gist-{gist_id}-{revision}", contents, "gist", url, revision)
    _announce(name, fetched)
    return fetched


def fetch_url(url: str, timeout: float) -> Fetched:
    parsed = urlparse(url)
    if parsed.scheme != "https" and not (parsed.scheme == "http" and parsed.hostname in LOOPBACK):
        raise ModelSourceError(f"{url}: only https:// URLs are fetched (http:// only from this machine). "
                               "HINT: use the https address of the file")
    filename = Path(parsed.path).name
    if not filename.endswith(".py"):
        raise ModelSourceError(f"{url}: does not point at a .py file. HINT: use the raw file's address "
                               "(e.g. https://raw.githubusercontent.com/<user>/<repo>/<ref>/model.py), or gist:<id>")
    body = _get(url, url, timeout)
    folder = cache_root() / f"url-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
    fetched = _store(folder, {filename: body}, "url", url, None)
    fetched.path = fetched.path / filename
    _announce(url, fetched)
    return fetched


def cache_root() -> Path:
    return Path(os.environ.get("TRAINBOOK_CACHE_DIR", "~/.cache/trainbook")).expanduser() / "models"


def _get(url: str, name: str, timeout: float, api: bool = False) -> bytes:
    import urllib.error
    import urllib.request

    headers = {"User-Agent": "trainbook"}
    if api:
        headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"})
        if os.environ.get("GITHUB_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['GITHUB_TOKEN']}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        raise _http_error(e, name, url) from None
    except TimeoutError:
        raise _timeout(name, url, timeout) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise _timeout(name, url, timeout) from None
        raise ModelSourceError(f"{name}: cannot reach {url}: {e.reason}. HINT: check the network connection"
                               + (" and TRAINBOOK_GIST_API_URL" if api else "")) from None


def _http_error(e, name: str, url: str) -> ModelSourceError:
    try:
        message = json.loads(e.read() or b"{}").get("message", "")
    except (ValueError, AttributeError, OSError):
        message = ""
    said = f": {message}" if message else ""
    if e.code in (403, 429) and e.headers.get("x-ratelimit-remaining") == "0":
        reset = e.headers.get("x-ratelimit-reset", "")
        when = ""
        if reset.isdigit():
            at = datetime.datetime.fromtimestamp(int(reset), datetime.timezone.utc)
            minutes = max(0, round((at - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 60))
            when = f"; it resets at {at:%H:%M} UTC, in {minutes} min"
        return ModelSourceError(f"{name}: GitHub API rate limit reached (HTTP {e.code}, x-ratelimit-remaining: 0"
                                f"{when}). HINT: wait, or set GITHUB_TOKEN to a GitHub token (5,000 requests per "
                                "hour instead of 60); a gist:<id>@<revision> fetched once is read from the cache")
    if e.code == 404:
        return ModelSourceError(f"{name}: not found (HTTP 404 from {url}). HINT: check the id, the last part of "
                                "https://gist.github.com/<user>/<id>; a revision must be one listed in the gist's "
                                "revisions" if name.startswith("gist:") else
                                f"{name}: not found (HTTP 404). HINT: check the address")
    if e.code in (403, 429) and e.headers.get("retry-after"):
        return ModelSourceError(f"{name}: GitHub asks to slow down (HTTP {e.code}{said}). HINT: retry in "
                                f"{e.headers['retry-after']} s")
    return ModelSourceError(f"{name}: HTTP {e.code} from {url}{said}")


def _timeout(name: str, url: str, timeout: float) -> ModelSourceError:
    return ModelSourceError(f"{name}: no answer from {url} within {timeout:g} s. HINT: check the network "
                            "connection and retry, or raise TRAINBOOK_FETCH_TIMEOUT (seconds)")


def _store(folder: Path, contents: dict, kind: str, url: str, revision: str | None) -> Fetched:
    """Write the files and their manifest into a temp folder, then rename it into place."""
    digests = {n: hashlib.sha256(body).hexdigest() for n, body in contents.items()}
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for filename, body in contents.items():
        (tmp / filename).write_bytes(body)
    manifest = {"kind": kind, "url": url, "revision": revision, "sha256": digests}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return Fetched(kind, folder, url, revision, digests, cached=False)


def _cached(folder: Path, kind: str, url: str, revision: str) -> Fetched | None:
    if not folder.exists():
        return None
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        digests = manifest["sha256"]
        if all(hashlib.sha256((folder / n).read_bytes()).hexdigest() == d for n, d in digests.items()):
            return Fetched(kind, folder, url, revision, dict(digests), cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no or damaged cache entry: fetch again
    print(f"{folder}: changed since it was fetched; fetching it again")
    return None


def _announce(name: str, fetched: Fetched):
    where = f"cached in {fetched.path}" if fetched.cached else f"fetched into {fetched.path}"
    print(f"{name}: {where}" + (f" (revision {fetched.revision})" if fetched.revision else ""))
    for filename, digest in sorted(fetched.sha256.items()):
        print(f"  {filename} sha256 {digest}")
