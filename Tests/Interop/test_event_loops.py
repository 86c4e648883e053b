"""A service pinned to fewer CPUs than the machine has (taskset, a supervisor's sched_setaffinity) runs one event loop
per CPU it may use, not one per CPU of the machine (ServiceSupport's EventLoopCount); NIO's own
NIO_SINGLETON_GROUP_LOOP_COUNT still wins."""

import os
import shutil
from pathlib import Path

import httpx2 as httpx
import pytest

from support import BIN, Service, free_port

pytestmark = pytest.mark.skipif(
    shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2,
    reason="needs taskset and two CPUs this process may use")


def event_loops(pid: int) -> int:
    """NIO names the threads of its shared group NIO-SGLTN-<group>-#<loop>."""
    return sum(1 for task in Path(f"/proc/{pid}/task").iterdir()
               if (task / "comm").read_text().startswith("NIO-SGLTN-"))


def todos_api(launcher: list[str], extra: dict[str, str] | None = None) -> tuple[Service, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"HOST": "127.0.0.1", "PORT": str(port), "TODOS_DATABASE": "todos.sqlite",
           "AUTH0_DOMAIN": "tenant.example.test", "JWKS_URL": "http://127.0.0.1:9/jwks.json", **(extra or {})}
    return Service("todos-api", [*launcher, str(BIN / "TodosAPI")], env, base + "/api/health"), base


@pytest.mark.parametrize(("launcher", "extra", "loops"), [
    (["taskset", "-c", "0"], None, 1),
    ([], None, None),  # NIO's own count: the machine's CPUs, or its container's
    (["taskset", "-c", "0"], {"NIO_SINGLETON_GROUP_LOOP_COUNT": "2"}, 2),
])
def test_event_loops_follow_the_cpus_the_process_may_use(launcher, extra, loops):
    service, base = todos_api(launcher, extra)
    try:
        assert httpx.get(base + "/api/health", timeout=10).status_code == 200
        response = httpx.get(base + "/api/me", timeout=10)
        assert response.status_code == 401 and "Bearer" in response.headers["www-authenticate"]
        if loops is not None:
            assert event_loops(service.process.pid) == loops
        else:  # not reduced by the affinity rule, which only ever lowers the count to the CPUs allowed
            assert 1 <= event_loops(service.process.pid) <= len(os.sched_getaffinity(0))
    finally:
        service.stop()
