"""The container files: compose validates, the Dockerfile lints clean, and the image's entrypoint,
environment and the `bigarrays serve`/`demo` command line cannot drift apart.

No Docker engine runs here, so the entrypoint script is run directly, for real, against a
dataset in a temp directory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bigarrays_cli import build_parser

import bigarrays_core as bc
from tests.services import free_port, stop_process, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
COMPOSE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "docker" / "nginx.conf"
REPLICAS = ("bigarrays-1", "bigarrays-2")


def _tool(name: str) -> str:
    """The tool's path; skips when it is absent, unless running in CI (then it must be there)."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (CI must install it: see README, Development)")
        pytest.skip(f"{name} is not installed")
    return path


def _subcommand_options(name: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {s for a in sub.choices[name]._actions for s in a.option_strings}


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_validates() -> None:
    r = subprocess.run([_tool("docker-compose"), "-f", str(COMPOSE), "config", "-q"], capture_output=True,
                       text=True, cwd=ROOT, timeout=60, env={**os.environ, "DOCKER_HOST": "unix:///nonexistent"})
    assert r.returncode == 0, r.stderr


def test_dockerfile_passes_hadolint() -> None:
    r = subprocess.run([_tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_shape() -> None:
    lines = _dockerfile()
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) >= 2 and all("slim" in f for f in froms)  # multi-stage, slim
    user = [ln for ln in lines if ln.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0") and "root" not in user[-1]
    health = next(ln for ln in lines if ln.startswith("HEALTHCHECK "))
    assert "bigarrays-entrypoint" in health and "healthcheck" in health
    assert "/healthz" in ENTRYPOINT.read_text()
    assert 'ENTRYPOINT ["/usr/local/bin/bigarrays-entrypoint"]' in lines
    copy = next(ln for ln in lines if "docker/entrypoint.sh" in ln)
    assert copy.endswith("/usr/local/bin/bigarrays-entrypoint")


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")}
    for ln in _dockerfile():
        if ln.startswith("COPY ") and "--from=" not in ln:
            sources = [w for w in ln.split()[1:-1] if not w.startswith("--")]
            for src in sources:
                assert (ROOT / src).exists(), src
                assert src not in ignored and src.rstrip("/") not in ignored, f"{src} is in .dockerignore"


def _entrypoint_variables() -> set[str]:
    return set(re.findall(r"\$\{?(BIGARRAYS_[A-Z_]+)", ENTRYPOINT.read_text()))


def test_image_environment_is_what_the_entrypoint_reads() -> None:
    env = set(re.findall(r"\b(BIGARRAYS_[A-Z_]+)=", " ".join(ln for ln in _dockerfile() if ln.startswith("ENV "))))
    assert env and env <= _entrypoint_variables()
    for name in (*REPLICAS, "demo-data"):
        compose_env = {k for k in _compose()["services"][name]["environment"] if k.startswith("BIGARRAYS_")}
        assert compose_env <= _entrypoint_variables(), name
    # Every variable the entrypoint documents is one it uses, and vice versa.
    documented = set(re.findall(r"^#\s+(BIGARRAYS_[A-Z_]+)", ENTRYPOINT.read_text(), re.M))
    assert documented == _entrypoint_variables()


def test_entrypoint_flags_exist_in_the_cli() -> None:
    text = re.sub(r"\\\n", " ", ENTRYPOINT.read_text())
    code = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    used = {"serve": set(), "demo": set()}  # type: dict[str, set[str]]
    for ln in code:
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", ln))
        if ln.startswith("exec bigarrays serve") or ln.startswith('set -- "$@"'):  # extra args go to serve
            used["serve"] |= flags
        elif ln.startswith("exec bigarrays demo"):
            used["demo"] |= flags
    assert {"--host", "--port", "--workers", "--cache-mb", "--write-token"} <= used["serve"]
    assert {"--host", "--port", "--dir"} <= used["demo"]
    for command, flags in used.items():
        assert flags <= _subcommand_options(command), (command, flags - _subcommand_options(command))


def test_compose_wires_services_and_publishes_on_localhost_only() -> None:
    compose = _compose()
    services = compose["services"]
    assert {*REPLICAS, "proxy", "demo-data", "minio", "fake-gcs"} <= set(services)
    for svc in services.values():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
    for name in REPLICAS:
        replica = services[name]
        assert not replica.get("ports"), "replicas are reached through the proxy only"
        env = replica["environment"]
        assert env == services[REPLICAS[0]]["environment"]  # replicas alike: any of them answers
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert env["STORAGE_EMULATOR_HOST"] == "http://fake-gcs:4443"
        assert env["AWS_ACCESS_KEY_ID"] == services["minio"]["environment"]["MINIO_ROOT_USER"]
        assert env["AWS_SECRET_ACCESS_KEY"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
        assert "BIGARRAYS_CACHE_REVALIDATE" in env
        assert replica["volumes"] == services["demo-data"]["volumes"]  # shared storage
        assert replica["volumes"][0].split(":")[0] in set(compose["volumes"])
        assert replica["depends_on"]["demo-data"]["condition"] == "service_completed_successfully"
        assert replica["image"] == services["demo-data"]["image"]
    assert services["demo-data"]["command"] == ["prepare"]
    assert (ROOT / services["demo-data"]["build"]["dockerfile"]).exists()
    proxy = services["proxy"]
    assert set(proxy["depends_on"]) == set(REPLICAS)
    (mount,) = proxy["volumes"]
    assert (ROOT / mount.split(":")[0]).resolve() == NGINX_CONF
    upstreams = re.findall(r"^\s*server\s+([\w.-]+):8000;", NGINX_CONF.read_text(), re.M)
    assert sorted(upstreams) == sorted(REPLICAS)


def test_proxy_configuration_is_valid_nginx(tmp_path: Path) -> None:
    """``nginx -t`` on the proxy's configuration (the replicas' names made local: nginx resolves
    upstream names when it checks a configuration)."""
    nginx = _tool("nginx")
    text = NGINX_CONF.read_text()
    for name in REPLICAS:
        text = text.replace(f"{name}:8000", "127.0.0.1:8000")
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n" + text)
    r = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "proxy_buffering off" in text  # cutouts stream through it


def test_entrypoint_prepare_builds_the_demo_only_without_datasets(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with_datasets = subprocess.run(["sh", str(ENTRYPOINT), "prepare"], timeout=120, capture_output=True,
                                   env={**env, "BIGARRAYS_DATASETS": "a=/x", "BIGARRAYS_DEMO_DIR": str(tmp_path)})
    assert with_datasets.returncode == 0 and not any(tmp_path.iterdir())
    demo = subprocess.run(["sh", str(ENTRYPOINT), "prepare"], timeout=300, capture_output=True,
                          env={**env, "BIGARRAYS_DATASETS": "", "BIGARRAYS_DEMO_DIR": str(tmp_path / "demo")})
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "demo" / "em" / "info").exists()


def _start_entrypoint(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    full = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "BIGARRAYS_HOST": "127.0.0.1", "BIGARRAYS_PORT": str(port), **env}
    with open(log, "wb") as out:
        proc = subprocess.Popen(["sh", str(ENTRYPOINT)], env=full, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, signal.SIGINT, timeout=15)


def test_entrypoint_serves_datasets_from_the_environment(tmp_path: Path) -> None:
    import json
    import urllib.request

    for name in ("a", "b"):
        ba = bc.create(str(tmp_path / name), dtype="uint8", size=(32, 32, 8), chunk_size=(32, 32, 8))
        ba[:, :, :] = ord(name)
    datasets = f"a={(tmp_path / 'a').as_uri()},b={tmp_path / 'b'}"
    proc, base = _start_entrypoint({"BIGARRAYS_DATASETS": datasets, "BIGARRAYS_WORKERS": "1",
                                    "BIGARRAYS_CACHE_MB": "16", "BIGARRAYS_WRITE_TOKEN": "s3cret"},
                                   tmp_path / "log")
    try:
        wait_for_http(base + "/healthz", timeout=60, proc=proc)
        with urllib.request.urlopen(base + "/v1/datasets", timeout=10) as r:
            listed = json.dumps(json.load(r))
        assert '"a"' in listed and '"b"' in listed
        with urllib.request.urlopen(base + "/v1/b/cutout/0/0:2,0:1,0:1", timeout=10) as r:
            assert r.read() == b"bb"
        port = base.rpartition(":")[2]
        check = subprocess.run(["sh", str(ENTRYPOINT), "healthcheck"], timeout=30,
                               env={**os.environ, "BIGARRAYS_PORT": port})
        assert check.returncode == 0
    finally:
        _stop(proc)
    dead = subprocess.run(["sh", str(ENTRYPOINT), "healthcheck"], timeout=30, capture_output=True,
                          env={**os.environ, "BIGARRAYS_PORT": base.rpartition(":")[2]})
    assert dead.returncode != 0


def test_entrypoint_without_datasets_serves_the_demo(tmp_path: Path) -> None:
    proc, base = _start_entrypoint({"BIGARRAYS_DATASETS": "", "BIGARRAYS_DEMO_DIR": str(tmp_path / "demo")},
                                   tmp_path / "log")
    try:
        wait_for_http(base + "/healthz", timeout=90, proc=proc)
        assert (tmp_path / "demo" / "em" / "info").exists()
    finally:
        _stop(proc)
