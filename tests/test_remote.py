"""Model code from URLs and GitHub Gists, against a local server that answers like the Gist REST API
(tests/gist_server.py documents the response shapes it serves)."""

import hashlib
import json

import pytest
import torch

import trainbook as tb
from trainbook.models import ModelSourceError
from trainbook.models.remote import MANIFEST

from gist_server import serve

GIST_ID, OLD, NEW = "aa5a315d61ae9438b18d", "57a7f021a713b1c5a6a199b54cc514735d2d462f", "b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0"
MODEL_V1 = """import torch.nn as nn


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(256, 8)
        self.head = nn.Linear(8, 256)

    def forward(self, input_ids):
        return self.head(self.embed(input_ids))
"""
MODEL_V2 = MODEL_V1.replace("nn.Embedding(256, 8)", "nn.Embedding(256, 12)").replace("nn.Linear(8, 256)", "nn.Linear(12, 256)")
CONFIG = json.dumps({"model_name": "TinyLM"})


@pytest.fixture
def api(tmp_path, monkeypatch):
    gists = {GIST_ID: {NEW: {"model.py": MODEL_V2, "config.json": CONFIG, "README.md": "# a model"},
                       OLD: {"model.py": MODEL_V1, "config.json": CONFIG}},
             "0badc0ffee": {NEW: {"train.py": MODEL_V1}}, "unsafe": {NEW: {"model.py": MODEL_V1, ".hidden.py": ""}},
             "ratelimited": "rate-limited", "slowgist": "slow", "slowdown": "secondary", "broken": "error",
             "htmlpage": "html"}
    with serve(gists) as server:
        monkeypatch.setenv("TRAINBOOK_GIST_API_URL", server.url)
        monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        yield server


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_gist_loads_its_newest_revision_and_records_every_sha256(api, tmp_path, capsys):
    model = tb.load_model(f"gist:{GIST_ID}", trust_remote_code=True)
    assert type(model).__name__ == "TinyLM" and model.embed.embedding_dim == 12
    source = model.trainbook_source
    assert source["kind"] == "gist" and source["source"] == f"gist:{GIST_ID}"
    assert source["fetched"]["revision"] == NEW
    assert source["fetched"]["sha256"] == {"model.py": sha(MODEL_V2), "config.json": sha(CONFIG)}
    out = capsys.readouterr().out
    assert f"model.py sha256 {sha(MODEL_V2)}" in out and f"config.json sha256 {sha(CONFIG)}" in out
    folder = tmp_path / "cache" / "models" / f"gist-{GIST_ID}-{NEW}"
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST, "config.json", "model.py"])  # no README
    assert api.requests[0][0] == f"/gists/{GIST_ID}"
    assert api.requests[0][1]["Accept"] == "application/vnd.github+json"


def test_a_pinned_revision_is_fetched_once_then_read_from_the_cache(api, capsys):
    first = tb.load_model(f"gist:{GIST_ID}@{OLD}", trust_remote_code=True)
    assert first.embed.embedding_dim == 8 and [p for p, _ in api.requests] == [f"/gists/{GIST_ID}/{OLD}"]
    second = tb.load_model(f"gist:{GIST_ID}@{OLD}", trust_remote_code=True)
    assert len(api.requests) == 1 and second.trainbook_source["fetched"]["cached"] is True
    assert "cached in" in capsys.readouterr().out


def test_a_changed_cache_entry_is_fetched_again(api, tmp_path):
    tb.load_model(f"gist:{GIST_ID}@{OLD}", trust_remote_code=True)
    (tmp_path / "cache" / "models" / f"gist-{GIST_ID}-{OLD}" / "model.py").write_text("raise SystemExit('tampered')\n")
    assert tb.load_model(f"gist:{GIST_ID}@{OLD}", trust_remote_code=True).embed.embedding_dim == 8
    assert len(api.requests) == 2


def test_a_truncated_file_is_read_from_its_raw_url(api):
    api.truncate.add("model.py")
    model = tb.load_model(f"gist:{GIST_ID}", trust_remote_code=True)
    assert model.trainbook_source["fetched"]["sha256"]["model.py"] == sha(MODEL_V2)
    assert [p for p, _ in api.requests] == [f"/gists/{GIST_ID}", f"/raw/{GIST_ID}/{NEW}/model.py"]


def test_github_token_goes_to_the_api_and_nowhere_else(api, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    api.truncate.add("model.py")
    tb.load_model(f"gist:{GIST_ID}", trust_remote_code=True)
    (_, api_headers), (_, raw_headers) = api.requests
    assert api_headers["Authorization"] == "Bearer t0ken" and "Authorization" not in raw_headers


def test_fetched_code_runs_only_with_trust_remote_code(api):
    with pytest.raises(ModelSourceError, match=r"gist:aa5a.*runs code fetched from the internet, which needs "
                                               r"trust_remote_code=True"):
        tb.load_model(f"gist:{GIST_ID}")
    assert api.requests == []


@pytest.mark.parametrize("source,message", [
    ("gist:ffffffffffff", r"gist:ffffffffffff: not found \(HTTP 404 from http://127.0.0.1:\d+/gists/ffffffffffff\). "
                          r"HINT: check the id"),
    (f"gist:{GIST_ID}@abcdef12", rf"gist:{GIST_ID}@abcdef12: not found \(HTTP 404.*a revision must be one listed"),
    ("gist:ratelimited", r"gist:ratelimited: GitHub API rate limit reached \(HTTP 403, x-ratelimit-remaining: 0; it "
                         r"resets at \d\d:\d\d UTC, in 30 min\). HINT: wait, or set GITHUB_TOKEN"),
    ("gist:0badc0ffee", r"gist:0badc0ffee: the gist has no model.py \(it holds train.py\). HINT: add the model class"),
    ("gist:not a gist!", r"not a Gist reference. HINT: write gist:<id> or gist:<id>@<revision>"),
    ("gist:unsafe", r"gist:unsafe: unsafe file name '.hidden.py' in the gist"),
    ("gist:slowdown", r"gist:slowdown: GitHub asks to slow down \(HTTP 429: You have exceeded a secondary rate limit"
                      r"\). HINT: retry in 60 s"),
    ("gist:broken", r"gist:broken: HTTP 502 from http://127.0.0.1:\d+/gists/broken: Server Error"),
    ("gist:htmlpage", r"gist:htmlpage: http://127.0.0.1:\d+/gists/htmlpage did not answer JSON .*HINT: check "
                      r"TRAINBOOK_GIST_API_URL"),
])
def test_gist_errors_name_the_gist_and_the_fix(api, source, message):
    with pytest.raises(ModelSourceError, match=message):
        tb.load_model(source, trust_remote_code=True)


def test_a_slow_api_times_out_with_the_setting_to_raise(api, monkeypatch):
    monkeypatch.setenv("TRAINBOOK_FETCH_TIMEOUT", "0.5")
    with pytest.raises(ModelSourceError, match=r"gist:slowgist: no answer from http://127.0.0.1:\d+/gists/slowgist "
                                               r"within 0.5 s. HINT: .*TRAINBOOK_FETCH_TIMEOUT"):
        tb.load_model("gist:slowgist", trust_remote_code=True)


def test_an_unreachable_api_is_named(api, monkeypatch):
    monkeypatch.setenv("TRAINBOOK_GIST_API_URL", "http://127.0.0.1:9")
    with pytest.raises(ModelSourceError, match=r"cannot reach http://127.0.0.1:9/gists/.*TRAINBOOK_GIST_API_URL"):
        tb.load_model(f"gist:{GIST_ID}", trust_remote_code=True)


def test_a_url_of_a_py_file_loads_and_records_its_sha256(api, capsys):
    api.raw["/raw/model.py"] = MODEL_V1
    url = f"http://127.0.0.1:{api.server_port}/raw/model.py"
    model = tb.load_model(url, trust_remote_code=True)
    assert type(model).__name__ == "TinyLM" and model.trainbook_source["kind"] == "url"
    assert model.trainbook_source["fetched"]["sha256"] == {"model.py": sha(MODEL_V1)}
    assert f"model.py sha256 {sha(MODEL_V1)}" in capsys.readouterr().out
    logits = tb.models.make_forward(model, tb.TaskSpec.preset("lm"))({"input_ids": torch.zeros(1, 4, dtype=torch.long)})
    assert logits.shape == (1, 4, 256)


@pytest.mark.parametrize("url,message", [
    ("http://example.com/model.py", r"only https:// URLs are fetched"),
    ("https://example.com/model.txt", r"does not point at a .py file"),
])
def test_urls_that_are_not_fetched(url, message):
    with pytest.raises(ModelSourceError, match=message):
        tb.load_model(url, trust_remote_code=True)


def test_a_missing_url_is_a_404_error(api):
    with pytest.raises(ModelSourceError, match=r"/raw/absent.py: not found \(HTTP 404\)"):
        tb.load_model(f"http://127.0.0.1:{api.server_port}/raw/absent.py", trust_remote_code=True)
