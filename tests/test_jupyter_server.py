"""A real Jupyter server runs a notebook that uses fdkit, through the server's own APIs.

The test starts ``jupyter server`` on a free loopback port with a random token, writes a
small notebook through the contents API, starts a kernel (a kernelspec written for this test
that runs *this* Python) through the kernels API, executes each code cell over the kernel's
websocket with the Jupyter messaging protocol, and checks what the cells printed. The server
is always stopped afterwards. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

import fdkit

pytestmark = pytest.mark.slow  # starts a real Jupyter server

HOST = "127.0.0.1"
KERNEL_NAME = "fdkit-test-python"
NOTEBOOK = "fdkit_check.ipynb"
STARTUP_TIMEOUT = 60  # seconds for the server to answer /api/status
REPLY_TIMEOUT = 60  # seconds for one cell to finish
HTTP_TIMEOUT = 15  # seconds for one REST call
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in kernel tracebacks

# Never route loopback requests through a proxy named in the environment (http_proxy etc.).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

CELLS = [
    "import sys\nimport pandas as pd\nimport fdkit\nfrom fdkit import eligibility, records",
    """\
persons = pd.DataFrame({
    "person_id": ["A", "B", "C", "D"],
    "date_of_birth": pd.to_datetime(["2005-01-01", "1990-01-01", "2006-03-15", "2010-06-01"]),
    "sex": ["M", "F", "M", "F"],
})
# A: a knife crime and an assault (eligible). B: the same, but aged 33 (too old).
# C: a single knife crime (no second crime). D: two knife crimes (eligible).
events = pd.DataFrame({
    "crime_id": ["K1", "V1", "K2", "V2", "K3", "K4", "K5"],
    "person_id": ["A", "A", "B", "B", "C", "D", "D"],
    "offence_date": pd.to_datetime(["2022-10-01", "2022-06-01", "2022-10-01", "2022-06-01",
                                    "2022-11-01", "2022-09-01", "2023-01-15"]),
    "role": ["suspect"] * 7,
    "offence_code": ["10D/1", "8G", "10D/1", "8G", "10D/1", "10D/1", "10D/1"],
    "knife": [False] * 7,
    "police_initiated": [False] * 7,
})
checked = records.validate_frames(persons, events, source="in-memory")
result = eligibility.screen(checked, "2023-02-01")""",
    """\
print("eligible:", len(result.eligible), ",".join(result.eligible["person_id"]))
print("executable:", sys.executable)
print("fdkit:", fdkit.__file__)
result""",
]

EXPECTED_STDOUT = [
    "",
    "",
    f"eligible: 2 A,D\nexecutable: {sys.executable}\nfdkit: {fdkit.__file__}\n",
]


# ------------------------------------------------------------------------ the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def request(self, method: str, path: str, body=None, *, token: bool = True, timeout: float = HTTP_TIMEOUT):
        """One REST call; returns (HTTP status, parsed JSON body or None)."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"token {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
        return status, (json.loads(text) if text.strip() else None)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


def _write_kernelspec(data_dir: Path) -> None:
    """A kernelspec that runs the kernel with the interpreter running the tests."""
    spec = data_dir / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "fdkit test (this Python)",
                "language": "python",
                "metadata": {"debugger": False},
            }
        )
    )


def _start(tmp: Path, root: Path, env: dict, attempt: int) -> Server:
    port, token = _free_port(), secrets.token_hex(24)
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # fail rather than silently move to another port
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
    ]
    if os.geteuid() == 0:  # CI runs as root; people don't
        command.append("--allow-root")
    log = tmp / f"server-{attempt}.log"
    with open(log, "wb") as log_file:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    return Server(f"http://{HOST}:{port}", token, root, process, log)


def _wait_until_ready(server: Server, deadline: float) -> bool:
    """Poll /api/status; False if the server exited, fail if the deadline passes."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            status, body = server.request("GET", "/api/status", timeout=2)
            if status == 200 and body is not None:
                return True
        except OSError:  # not listening yet (URLError and timeouts are OSErrors)
            pass
        time.sleep(0.2)
    pytest.fail(f"jupyter server not ready after {STARTUP_TIMEOUT} s; its output:\n{server.stderr()}")


def _stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


@pytest.fixture
def jupyter_server(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "README.md").write_text("A tiny notebook folder for the Jupyter server test.\n")
    data = tmp_path / "data"
    _write_kernelspec(data)
    env = dict(os.environ)
    for name in ("JUPYTER_TOKEN", "JUPYTER_PORT", "JUPYTER_CONFIG_PATH"):
        env.pop(name, None)
    env.update(
        JUPYTER_PATH=os.pathsep.join(filter(None, [str(data), os.environ.get("JUPYTER_PATH")])),
        JUPYTER_DATA_DIR=str(tmp_path / "user-data"),  # keep ~/.local/share/jupyter out of it
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),  # and the user's own server config
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for attempt in range(3):  # the free port may be taken between finding it and the server binding it
        server = _start(tmp_path, root, env, attempt)
        try:
            ready = _wait_until_ready(server, deadline)
        except BaseException:
            _stop(server)
            raise
        if ready or "already in use" not in server.stderr():
            break
    if not ready:
        _stop(server)
        pytest.fail(f"jupyter server exited with {server.process.returncode}; its output:\n{server.stderr()}")
    try:
        yield server
    finally:
        _stop(server)


# --------------------------------------------------------------- messaging over the websocket


def _execute_request(code: str, session: str) -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "session": session,
            "username": "fdkit-test",
            "date": datetime.now(UTC).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "buffers": [],
        "channel": "shell",
    }


async def _execute(ws, code: str, session: str) -> dict:
    """Run one cell; collect its outputs until execute_reply and iopub status idle."""
    request = _execute_request(code, session)
    msg_id = request["header"]["msg_id"]
    await ws.write_message(json.dumps(request))
    got = {"stdout": "", "stderr": "", "results": [], "errors": [], "reply": None}
    idle = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPLY_TIMEOUT
    while got["reply"] is None or not idle:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no execute_reply/idle within {REPLY_TIMEOUT} s for {code!r}; so far {got}")
        try:
            raw = await asyncio.wait_for(ws.read_message(), remaining)
        except TimeoutError:
            continue
        if raw is None:
            raise AssertionError(f"kernel websocket closed while running {code!r}; so far {got}")
        if isinstance(raw, bytes):  # binary frames carry buffers; these cells send none
            continue
        message = json.loads(raw)
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue  # someone else's message (e.g. the server's kernel_info_request)
        kind, content = message["header"]["msg_type"], message["content"]
        if message["channel"] == "shell" and kind == "execute_reply":
            got["reply"] = content
        elif message["channel"] == "iopub":
            if kind == "stream":
                got[content["name"]] += content["text"]
            elif kind == "execute_result":
                got["results"].append(content["data"])
            elif kind == "error":
                got["errors"].append(ANSI.sub("", "\n".join(content["traceback"])))
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
    return got


async def _run_cells(server: Server, kernel_id: str, cells: list[str]) -> list[dict]:
    session = uuid.uuid4().hex
    url = server.url.replace("http://", "ws://", 1) + f"/api/kernels/{kernel_id}/channels?session_id={session}"
    request = HTTPRequest(
        url,
        headers={"Authorization": f"token {server.token}"},
        connect_timeout=HTTP_TIMEOUT,
        request_timeout=HTTP_TIMEOUT,
    )
    ws = await asyncio.wait_for(websocket_connect(request), HTTP_TIMEOUT)
    try:
        return [await _execute(ws, code, session) for code in cells]
    finally:
        ws.close()


# ------------------------------------------------------------------------------ the test


def test_a_jupyter_server_runs_a_notebook_that_screens_records(jupyter_server):
    server = jupyter_server

    # The token is really required, and the server offers the kernel that runs this Python.
    assert server.request("GET", "/api/status", token=False)[0] == 403
    status, specs = server.request("GET", "/api/kernelspecs")
    assert status == 200, specs
    assert specs["kernelspecs"][KERNEL_NAME]["spec"]["argv"][0] == sys.executable

    # Write the notebook through the contents API and read it back.
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in CELLS])
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "fdkit test", "language": "python"}
    status, saved = server.request(
        "PUT", f"/api/contents/{NOTEBOOK}", {"type": "notebook", "format": "json", "content": notebook}
    )
    assert status == 201, saved
    assert (server.root / NOTEBOOK).is_file()
    status, listing = server.request("GET", "/api/contents")
    assert status == 200 and {"README.md", NOTEBOOK} <= {item["name"] for item in listing["content"]}
    status, model = server.request("GET", f"/api/contents/{NOTEBOOK}?type=notebook&content=1")
    assert status == 200 and model["type"] == "notebook", model
    read_back = nbformat.from_dict(model["content"])
    nbformat.validate(read_back)
    code_cells = [cell.source for cell in read_back.cells if cell.cell_type == "code"]
    assert code_cells == CELLS

    # Start a kernel and run every code cell over the websocket.
    status, kernel = server.request("POST", "/api/kernels", {"name": KERNEL_NAME, "path": NOTEBOOK})
    assert status == 201, kernel
    assert kernel["name"] == KERNEL_NAME
    deleted = False
    try:
        outputs = asyncio.run(_run_cells(server, kernel["id"], code_cells))
        for number, (got, stdout) in enumerate(zip(outputs, EXPECTED_STDOUT, strict=True), start=1):
            assert got["errors"] == [], f"cell {number} raised:\n" + "\n".join(got["errors"])
            assert got["reply"]["status"] == "ok", (number, got)
            assert got["stdout"] == stdout, (number, got)
        assert outputs[0]["results"] == outputs[1]["results"] == []
        assert [r["text/plain"] for r in outputs[2]["results"]] == ["Screening(2023-02-01: 2 eligible)"]

        status, _ = server.request("DELETE", f"/api/kernels/{kernel['id']}")
        deleted = True
        assert status == 204
        assert server.request("GET", "/api/kernels") == (200, [])
    finally:
        if not deleted:
            try:
                server.request("DELETE", f"/api/kernels/{kernel['id']}")
            except OSError:
                pass  # the server is stopped next anyway, and its kernels with it
