"""Snapshots and what is made of them do not hand out the process's secrets (issue 20).

A separate process holds realistic secrets the ways programs do (dict values, attributes, list
items, closure variables, environment-loaded configuration, a token-keyed session dict) and
saves snapshots with each string policy. With the default policy, no distinctive piece of any
secret appears in the snapshot file (decompressed), in any CLI output (text and JSON) or in the
drawings made from it; with ``strings="all"`` they do (so these checks can fail). Files are
0600 whatever the umask, written atomically, never through a planted symlink.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import subprocess
import sys
import textwrap
import zlib

import pytest

import refgraph
from refgraph._files import write_private

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAq7BFUpkGp3+LQmlQxTq8vJkZrYwXz0K9Qm3d\n"
    "Xq2fWv8LkPz1RbNc6TgHj4YeD0sMa5KuIoL7VnJ3wE9r2QhCxFtU\n"
    "-----END RSA PRIVATE KEY-----\n"
)
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyNDIiLCJyb2xlIjoiYWRtaW4ifQ"
    ".Qm7p3Xn0ZfKc9VtR2sLwYhJd8aEgUb4oNiMq6Tx1yCs"
)
SECRETS = {
    # name: (value, distinctive pieces of it)
    "api_key": ("API_KEY=sk-live-51HxQ9aZ0b8KmQvRz7SECRET", ["51HxQ9aZ0b8K", "mQvRz7SECRET"]),
    "password": ("hunter2-password-xyz", ["hunter2", "password-xyz"]),
    "stripe": ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", ["4eC39HqLyjWD", "arjtT1zdp7dc"]),
    "plain_password": ("Password123", ["Password123"]),
    "bearer": ("Bearer " + JWT, ["Qm7p3Xn0ZfKc", "eyJzdWIiOiJ1c2VyNDIi"]),
    "pem": (PEM, ["MIIEowIBAAKCAQEA", "Xq2fWv8LkPz1", "BEGIN RSA PRIVATE"]),
    "db_url": (
        "postgresql://app_user:S3cr3tPassw0rd@db.internal:5432/prod",
        ["S3cr3tPassw0rd", "app_user:S3"],
    ),
    "jwt": (JWT, ["9VtR2sLwYhJd8aEg"]),
    "session_token": ("tok_9f8e7d6c5b4a39281706f5e4", ["9f8e7d6c5b4a3928"]),
    "closure_secret": ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", ["16C7e42F292c6912E77"]),
}

APP = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import refgraph

    out = sys.argv[1]
    S = json.loads(os.environ.pop("APP_SECRETS"))   # secrets arrive from outside

    cfg = {"api_key": S["api_key"], "db_url": S["db_url"], "debug": False}   # dict values

    class Client:
        def __init__(self, token, password):
            self.token = token                          # attributes
            self.password = password
            self._listeners = []

    client = Client(S["bearer"], S["password"])
    keys = [S["pem"], S["jwt"], S["plain_password"], S["stripe"]]      # list items
    sessions = {S["session_token"]: client}             # a token as a dict key

    def make_signer(secret):
        def sign(data):                                  # closure variable
            return hash((secret, data))
        return sign

    signer = make_signer(S["closure_secret"])
    del S

    addresses = {
        "cfg_api_key": id(cfg["api_key"]),
        "client_token": id(client.token),
        "pem": id(keys[0]),
        "closure": id(signer.__closure__[0].cell_contents),
        "listeners_name": id(sys.intern("_listeners")),
        "cfg_key_db_url": id(next(k for k in cfg if k == "db_url")),
    }
    os.umask(int(sys.argv[2], 8))
    refgraph.snapshot().save(os.path.join(out, "old.rgsnap"))
    more = [Client("x", "y") for _ in range(3)]
    refgraph.snapshot().save(os.path.join(out, "default.rgsnap"))
    refgraph.snapshot(strings="all").save(os.path.join(out, "all.rgsnap"))
    refgraph.snapshot(strings="none").save(os.path.join(out, "none.rgsnap"))
    refgraph.dump_on_signal(signal.SIGUSR2, directory=out)
    os.kill(os.getpid(), signal.SIGUSR2)
    time.sleep(0.1)
    with open(os.path.join(out, "addresses.json"), "w") as f:
        json.dump(addresses, f)
    assert signer(1) and cfg and client and keys and sessions and more
    """
)


def pieces():
    return [p for _, ps in SECRETS.values() for p in ps]


def sections(data):
    """The raw (decompressed) sections of a snapshot file, read without refgraph."""
    assert data[:8] == b"RGSNAP\0\x1a"
    _version, count = struct.unpack_from("<II", data, 8)
    entries = [struct.unpack_from("<IIIQQ", data, 16 + 28 * i) for i in range(count)]
    at = 16 + 28 * count + 4
    out = {}
    for tag, codec, _crc, raw_len, stored_len in entries:
        stored = data[at : at + stored_len]
        at += stored_len
        raw = zlib.decompress(stored, -15) if codec == 1 else stored
        assert len(raw) == raw_len
        out[tag] = raw
    assert at == len(data)
    return out


def leaked(text, found=None):
    """The secret pieces found in ``text`` (str or bytes)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [p for p in (found or pieces()) if p in text]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    out = tmp_path_factory.mktemp("secrets")
    env = dict(os.environ, APP_SECRETS=json.dumps({k: v for k, (v, _) in SECRETS.items()}))
    script = out / "app.py"
    script.write_text(APP)
    subprocess.run([sys.executable, str(script), str(out), "0"], env=env, check=True, timeout=120)
    script.unlink()
    addresses = json.loads((out / "addresses.json").read_text())
    return out, addresses


def cli(*args):
    r = subprocess.run(
        [sys.executable, "-m", "refgraph", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr


def test_the_default_snapshot_file_holds_no_secret(app):
    out, _ = app
    for name in ("old.rgsnap", "default.rgsnap", "none.rgsnap"):
        data = (out / name).read_bytes()
        assert leaked(data) == [], name
        raw = b"".join(sections(data).values())
        assert leaked(raw) == [], name
    dumped = [p for p in out.iterdir() if p.name.startswith("refgraph-")]
    assert len(dumped) == 1
    assert leaked(b"".join(sections(dumped[0].read_bytes()).values())) == []


def test_strings_all_keeps_them_so_the_check_can_fail(app):
    out, _ = app
    raw = b"".join(sections((out / "all.rgsnap").read_bytes()).values())
    # Labels keep the first 40 characters: every piece that starts early enough is there,
    # except the session token: a str-keyed dict does not report its keys to the gc, so a key
    # nothing else refers to is not in the heap graph at all.
    early = [
        p
        for k, (v, ps) in SECRETS.items()
        for p in ps
        if 0 <= v.find(p) <= 40 - len(p) and k != "session_token"
    ]
    assert len(early) >= 10
    assert leaked(raw, early) == early


def test_cli_outputs_hold_no_secret_and_still_name_names(app, tmp_path):
    out, addr = app
    snap = out / "default.rgsnap"
    texts = [
        cli("info", snap),
        cli("info", snap, "--json"),
        cli("top", snap),
        cli("top", snap, "--json"),
        cli("diff", out / "old.rgsnap", snap, "--all"),
        cli("diff", out / "old.rgsnap", snap, "--json"),
        cli("paths", snap, "Client"),
        cli("paths", snap, "Client", "--json"),
    ]
    for key in ("cfg_api_key", "client_token", "pem", "closure"):
        texts.append(cli("paths", snap, hex(addr[key])))
        texts.append(cli("paths", snap, hex(addr[key]), "--json"))
    for fmt in ("dot", "svg"):
        for key, extra in [("cfg_api_key", []), ("client_token", []), ("pem", ["--refs"])]:
            drawing = tmp_path / f"{key}.{fmt}"
            texts.append(cli("graph", snap, hex(addr[key]), "-o", drawing, "--depth", "3", *extra))
            texts.append(drawing.read_text())
        drawing = tmp_path / f"client.{fmt}"
        cli("graph", snap, "Client", "-o", drawing, "--refs", "--count", "4")
        texts.append(drawing.read_text())
    for base in ([], ["--base", out / "old.rgsnap"]):
        page = tmp_path / "report.html"
        cli("report", snap, "-o", page, *base)
        assert oct(page.stat().st_mode & 0o777) == "0o600"
        texts.append(page.read_text())
    for t in texts:
        assert leaked(t) == [], t[:2000]
    joined = "\n".join(texts)
    assert "strings:" in texts[0] and "names" in texts[0]
    assert json.loads(texts[1])["strings"] == "names"
    # The secret itself is described by its length and fingerprint, not as text.
    api_key = SECRETS["api_key"][0]
    assert re.search(rf"str len={len(api_key)} #[0-9a-f]{{12}}", joined)
    # The same commands on the strings="all" snapshot do show them (the check can fail).
    every = out / "all.rgsnap"
    assert "51HxQ9aZ0b8K" in cli("paths", every, hex(addr["cfg_api_key"]))
    drawing = tmp_path / "all.svg"
    cli("graph", every, hex(addr["client_token"]), "-o", drawing, "--depth", "1")
    assert "Bearer eyJhbG" in drawing.read_text()
    # Paths still name the module global that holds the secret, as before.
    assert "dict __main__.cfg" in cli("paths", snap, hex(addr["cfg_api_key"]))
    assert "__main__.client" in cli("paths", snap, "Client")


def test_names_are_kept_and_fingerprints_group(app):
    out, addr = app
    snap = refgraph.load(out / "default.rgsnap")
    assert snap.info()["strings"] == "names"
    assert snap.info()["fingerprints"] > 0
    assert snap.describe(address=addr["listeners_name"]) == "str '_listeners'"
    assert snap.describe(address=addr["cfg_key_db_url"]) == "str 'db_url'"
    # The same secret held in two places has one fingerprint (the bearer token ends with
    # the JWT, a different string, which has another).
    described = snap.describe(address=addr["client_token"])
    assert re.fullmatch(r"str len=\d+ #[0-9a-f]{12}", described)
    # Fingerprints are comparable between snapshots of one process.
    old = refgraph.load(out / "old.rgsnap")
    assert old.describe(address=addr["cfg_api_key"]) == snap.describe(address=addr["cfg_api_key"])
    every = refgraph.load(out / "all.rgsnap")
    assert every.info()["strings"] == "all"
    assert every.describe(address=addr["cfg_api_key"]).startswith("str 'API_KEY=sk-live-51H")
    none = refgraph.load(out / "none.rgsnap")
    assert none.info()["strings"] == "none" and none.info()["fingerprints"] == 0
    assert none.describe(address=addr["cfg_api_key"]) == f"str len={len(SECRETS['api_key'][0])}"
    assert none.describe(address=addr["listeners_name"]) == "str len=10"


def test_in_process_policies():
    secret = "".join(["zq-", "Kx9!mP2#vL5", "-secret"])  # not a constant of this file
    holder = [secret]  # a list is tracked by the gc (a dict of strs is not)
    snap = refgraph.snapshot()
    assert re.fullmatch(r"str len=21 #[0-9a-f]{12}", snap.describe(secret))
    assert "Kx9!mP2" not in snap.to_bytes().decode("latin-1")
    assert "Kx9!mP2" not in b"".join(sections(snap.to_bytes()).values()).decode("latin-1")
    again = refgraph.snapshot()
    assert again.describe(secret) == snap.describe(secret)
    assert refgraph.snapshot(strings="all").describe(secret) == "str 'zq-Kx9!mP2#vL5-secret'"
    with pytest.raises(ValueError, match="strings must be"):
        refgraph.snapshot(strings="some")
    with pytest.raises(ValueError, match="strings must be"):
        refgraph.dump_on_signal(strings="everything")
    assert holder


def test_files_are_private_whatever_the_umask(app, tmp_path):
    out, _ = app
    for p in out.iterdir():
        if p.suffix == ".rgsnap":
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    snap = refgraph.snapshot(collect=False)
    old = os.umask(0o022)
    try:
        for mask in (0, 0o022, 0o277):
            os.umask(mask)
            target = tmp_path / f"u{mask:o}.rgsnap"
            snap.save(target)
            assert stat.S_IMODE(target.stat().st_mode) == 0o600
            drawing = tmp_path / f"u{mask:o}.svg"
            snap.graph("dict", drawing)
            assert stat.S_IMODE(drawing.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"u{m:o}.{e}" for m in (0, 0o22, 0o277) for e in ("rgsnap", "svg")
    ), "no temporary file is left behind"


def test_a_planted_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.chmod(victim, 0o644)
    snap = refgraph.snapshot(collect=False)
    for name in ("snap.rgsnap", "drawing.svg"):
        link = tmp_path / name
        link.symlink_to(victim)
        if name.endswith(".rgsnap"):
            snap.save(link)
            assert refgraph.load(link).info()["objects"] == len(snap)
        else:
            snap.graph("dict", link)
        assert victim.read_text() == "precious"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644
        assert not link.is_symlink() and link.is_file()
        assert stat.S_IMODE(link.stat().st_mode) == 0o600
    # A dangling link is not followed either: nothing is created where it points.
    dangling = tmp_path / "dangling.rgsnap"
    dangling.symlink_to(tmp_path / "elsewhere")
    snap.save(dangling)
    assert not (tmp_path / "elsewhere").exists() and not dangling.is_symlink()


def test_write_private_is_atomic_and_cleans_up(tmp_path):
    target = tmp_path / "report.json"
    assert write_private(target, b"old") == 3
    assert write_private(target, [b"new ", bytearray(b"content"), memoryview(b"!")]) == 12
    assert target.read_bytes() == b"new content!"

    def failing():
        yield b"half"
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_private(target, failing())
    assert target.read_bytes() == b"new content!"
    with pytest.raises(TypeError):
        write_private(target, "text")
    with pytest.raises(TypeError):
        write_private(target, [b"ok", 3])
    with pytest.raises(IsADirectoryError):
        write_private(tmp_path, b"x")
    with pytest.raises(FileNotFoundError):
        write_private(tmp_path / "missing" / "x.json", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
