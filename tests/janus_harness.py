"""A private Janus for tests and benchmarks: generated config, free ports, no system service.

Only the streaming plugin and the HTTP transport are loaded (their own plugin/transport
folders hold just those two libraries). Run it inside ``tools/netns-run`` for WebRTC: Janus
then gathers its host candidate on the namespace's veth, as Chromium does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from ports import free_port

JANUS = "/usr/bin/janus"
LIB = Path("/usr/lib/x86_64-linux-gnu/janus")


class Janus:
    """``Janus(folder).start()``; ``.url`` is its HTTP API; ``stop()``/``kill()`` end it."""

    def __init__(self, folder: Path, port: int | None = None, api_secret: str | None = None,
                 admin_key: str | None = None, ws: bool = False) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.ws_port = free_port() if ws else None  # the WebSocket transport too
        self.api_secret = api_secret
        self.admin_key = admin_key
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = folder / "janus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/janus"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def _write_config(self) -> None:
        f = self.folder
        libs = [("plugins", "plugins/libjanus_streaming.so"),
                ("transports", "transports/libjanus_http.so")]
        if self.ws_port:
            libs.append(("transports", "transports/libjanus_websockets.so"))
        for sub, lib in libs:
            (f / sub).mkdir(parents=True, exist_ok=True)
            link = f / sub / Path(lib).name
            if not link.exists():
                link.symlink_to(LIB / lib)
        (f / "empty").mkdir(exist_ok=True)
        secret = f'\tapi_secret = "{self.api_secret}"\n' if self.api_secret else ""
        (f / "janus.jcfg").write_text(
            "general: {\n"
            f'\tconfigs_folder = "{f}"\n\tplugins_folder = "{f}/plugins"\n'
            f'\ttransports_folder = "{f}/transports"\n\tevents_folder = "{f}/empty"\n'
            f'\tloggers_folder = "{f}/empty"\n\tdebug_level = 3\n{secret}'
            "\tsession_timeout = 60\n}\n"
            "media: {\n\trtp_port_range = \"20000-40000\"\n}\n"
            "nat: {\n\tnice_debug = false\n\tice_ignore_list = \"vmnet\"\n}\n"
            "plugins: {\n}\ntransports: {\n}\nevents: {\n\tbroadcast = false\n}\n")
        key = f'\tadmin_key = "{self.admin_key}"\n' if self.admin_key else ""
        (f / "janus.plugin.streaming.jcfg").write_text(
            f"general: {{\n{key}\trtp_port_range = \"40001-50000\"\n\tevents = false\n}}\n")
        (f / "janus.transport.http.jcfg").write_text(
            "general: {\n\tjson = \"compact\"\n\tbase_path = \"/janus\"\n\thttp = true\n"
            f"\tport = {self.port}\n\tip = \"127.0.0.1\"\n\thttps = false\n}}\n"
            "admin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n")
        if self.ws_port:
            (f / "janus.transport.websockets.jcfg").write_text(
                "general: {\n\tjson = \"compact\"\n\tws = true\n"
                f"\tws_port = {self.ws_port}\n\tws_ip = \"127.0.0.1\"\n\twss = false\n}}\n"
                "admin: {\n\tadmin_ws = false\n\tadmin_wss = false\n}\n")

    def start(self, timeout: float = 20.0) -> Janus:
        self._write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [JANUS, "-F", str(self.folder), "-C", str(self.folder / "janus.jcfg"),
             "--disable-colors"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"janus exited {self.proc.returncode}: "
                                   + self.log_path.read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(self.url + "/info", timeout=2) as r:
                    if json.load(r).get("janus") == "server_info":
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("janus did not answer on " + self.url)

    def kill(self) -> None:
        """SIGKILL: a crashed edge (nothing said to anyone)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    # -- a tiny synchronous client for assertions (the product's client is asyncio) ----------
    def _post(self, path: str, body: dict) -> dict:
        body = {"transaction": os.urandom(6).hex(), **body}
        if self.api_secret:
            body["apisecret"] = self.api_secret
        req = urllib.request.Request(self.url + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def mountpoints(self) -> list[dict]:
        """Every mountpoint Janus has (the streaming plugin's ``list``)."""
        sid = self._post("", {"janus": "create"})["data"]["id"]
        try:
            hid = self._post(f"/{sid}", {"janus": "attach",
                                         "plugin": "janus.plugin.streaming"})["data"]["id"]
            r = self._post(f"/{sid}/{hid}", {"janus": "message", "body": {"request": "list"}})
            return list(r["plugindata"]["data"]["list"])
        finally:
            self._post(f"/{sid}", {"janus": "destroy"})

    def wait_mountpoints(self, predicate, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        mps: list[dict] = []
        while time.monotonic() < deadline:
            try:
                mps = self.mountpoints()
            except OSError:
                mps = []
            if predicate(mps):
                return mps
            time.sleep(0.3)
        raise AssertionError(f"janus mountpoints never matched: {mps}")
