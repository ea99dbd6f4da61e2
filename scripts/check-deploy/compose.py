"""Checks examples/compose with a portcullis binary, for scripts/check-deploy.sh.

In a scratch copy of the example:
1. setup.sh (with PORTCULLIS_BIN) writes .env, the CA, the certificates, the secrets and
   the registry's config.yml; a second run must change nothing.
2. The certificates chain to the CA, carry the names compose.yaml relies on in
   subjectAltName, and match their keys; token.key/token.crt are a pair; the secret
   files are 0444 in a 0700 folder; the registry configuration names the realm, service,
   issuer, certificate and notification secret that compose.yaml and the secrets say.
3. podman-compose reads compose.yaml with that .env (`config`), and `up --dry-run`
   prints podman commands whose mounted files all exist.
4. End to end on loopback: Debian's registry 2.8 with that configuration over HTTPS
   with that certificate (only addresses and paths changed, which Compose would give
   it), and `portcullis serve` with the secrets folder as PORTCULLIS_SECRETS_DIR, behind
   an HTTPS front with the generated Portcullis certificate (Portcullis itself listens
   on plain HTTP here): `portcullis health` trusts it through trust.pem as in the
   compose health check; a token from Portcullis is accepted by the registry for a
   push; the registry's notification of the push, over HTTPS trusting ca.crt and with
   the generated Bearer secret, reaches Portcullis.

Usage: python compose.py EXAMPLE_DIR PORTCULLIS_BIN REGISTRY_BIN
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

HOST = "portcullis.check.test"
failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"FAIL compose: {message}")


def ok(message: str) -> None:
    print(f"ok   compose: {message}")


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, **kw)


def openssl(*args: str, stdin: str | None = None) -> str:
    answer = run("openssl", *args, input=stdin)
    if answer.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {answer.stderr.strip()}")
    return answer.stdout


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(work: Path, binary: str) -> None:
    env = {**os.environ, "PORTCULLIS_BIN": binary}
    first = run("./setup.sh", HOST, cwd=work, env=env)
    if first.returncode != 0:
        raise RuntimeError(f"setup.sh failed:\n{first.stdout}{first.stderr}")
    before = tree_digest(work)
    second = run("./setup.sh", HOST, cwd=work, env=env)
    after = tree_digest(work)
    # trust.pem is rewritten from the host's roots on purpose; it must come out the same.
    if second.returncode != 0 or "wrote" in second.stdout or before != after:
        fail(f"a second setup.sh run changed something:\n{second.stdout}{second.stderr}")
    else:
        ok("setup.sh wrote everything, and a second run kept it all")
    other = run("./setup.sh", "other.check.test", cwd=work, env=env)
    if other.returncode == 0:
        fail("setup.sh accepted a second host name for a folder set up already")


def check_files(work: Path) -> None:
    secrets, certs = work / "secrets", work / "certs"
    for folder, mode in ((secrets, 0o700), (work / "ca", 0o700)):
        if stat.S_IMODE(folder.stat().st_mode) != mode:
            fail(f"{folder.name}/ has mode {oct(stat.S_IMODE(folder.stat().st_mode))}, expected {oct(mode)}")
    for f in secrets.iterdir():
        if stat.S_IMODE(f.stat().st_mode) != 0o444:
            fail(f"secrets/{f.name} has mode {oct(stat.S_IMODE(f.stat().st_mode))}, expected 0o444")
    ca = str(certs / "ca.crt")
    for name, service in (("portcullis", "portcullis"), ("registry", "registry")):
        crt = str(certs / f"{name}.crt")
        verified = run("openssl", "verify", "-CAfile", ca, "-purpose", "sslserver", crt)
        if verified.returncode != 0:
            fail(f"{name}.crt does not verify against ca.crt: {verified.stdout}{verified.stderr}")
        sans = openssl("x509", "-in", crt, "-noout", "-ext", "subjectAltName")
        for want in (f"DNS:{HOST}", f"DNS:{service}", "DNS:localhost", "IP Address:127.0.0.1"):
            if want not in sans:
                fail(f"{name}.crt lacks {want} in subjectAltName: {sans.strip()}")
        key = secrets / f"{name}-tls.key"
        if openssl("pkey", "-in", str(key), "-pubout") != openssl("x509", "-in", crt, "-noout", "-pubkey"):
            fail(f"secrets/{key.name} is not the key of certs/{name}.crt")
    if openssl("pkey", "-in", str(secrets / "token.key"), "-pubout") != \
            openssl("x509", "-in", str(secrets / "token.crt"), "-noout", "-pubkey"):
        fail("secrets/token.key and secrets/token.crt are not a pair")
    trust = (certs / "trust.pem").read_text()
    if (certs / "ca.crt").read_text().strip() not in trust:
        fail("certs/trust.pem lacks the test CA")
    db_url = (secrets / "PORTCULLIS_DATABASE_URL").read_text().strip()
    password = (secrets / "postgres_password").read_text().strip()
    if db_url != f"postgres://portcullis:{password}@postgres:5432/portcullis":
        fail(f"PORTCULLIS_DATABASE_URL does not match postgres_password and compose.yaml: {db_url}")
    if (work / ".env").read_text() != f"PORTCULLIS_HOSTNAME={HOST}\n":
        fail(".env does not hold PORTCULLIS_HOSTNAME")

    config = yaml.safe_load((secrets / "registry-config.yml").read_text())
    token = config["auth"]["token"]
    want = {"realm": f"https://{HOST}:3000/v2/token", "service": "registry:5000",
            "issuer": HOST, "rootcertbundle": "/secrets/token.crt"}
    if token != want:
        fail(f"registry auth.token is {token}, expected {want}")
    endpoint = config["notifications"]["endpoints"][0]
    secret = (secrets / "PORTCULLIS_NOTIFICATIONS_SECRET").read_text().strip()
    if endpoint["url"] != f"https://{HOST}:3000/v2/webhooks/events" or \
            endpoint["headers"]["Authorization"] != [f"Bearer {secret}"]:
        fail(f"registry notification endpoint {endpoint['url']} or its secret is not the one Portcullis has")
    if config["http"]["addr"] != "0.0.0.0:5000" or \
            config["storage"]["filesystem"]["rootdirectory"] != "/var/lib/registry":
        fail("registry http.addr or storage is not what compose.yaml mounts and publishes")
    if not failures:
        ok("certificates (SANs, chain, keys), secrets (modes, database URL) and the registry configuration agree")


def check_podman_compose(work: Path, podman_compose: str) -> None:
    config = run(podman_compose, "config", cwd=work)
    if config.returncode != 0:
        fail(f"podman-compose config: {config.stderr.strip()}")
        return
    parsed = yaml.safe_load(config.stdout)
    env = parsed["services"]["portcullis"]["environment"]
    if env.get("PORTCULLIS_SERVER_EXTERNAL_URL") != f"https://{HOST}:3000" or \
            env.get("PORTCULLIS_MACHINE_FQDN_VALUE") != HOST:
        fail(f"podman-compose config: .env was not substituted: {env}")
    dry = run(podman_compose, "--verbose", "--dry-run", "up", "-d", cwd=work)
    if dry.returncode != 0:
        fail(f"podman-compose --dry-run up: {dry.stderr.strip()}")
        return
    creates = [line.split("INFO:podman_compose:", 1)[1] for line in dry.stderr.splitlines()
               if "INFO:podman_compose:podman create " in line]
    if len(creates) != 4:
        fail(f"podman-compose --dry-run up created {len(creates)} containers, expected 4")
    missing, mounts = [], 0
    for command in creates:
        words = command.split()
        for flag, value in zip(words, words[1:]):
            if flag in ("-v", "--volume"):
                source = value.split(":", 1)[0]
                mounts += 1
                if not Path(source).is_file():
                    missing.append(source)
    if missing:
        fail(f"compose.yaml mounts files setup.sh did not write: {missing}")
    elif not failures:
        ok(f"podman-compose 'config' and 'up --dry-run': 4 containers, {mounts} mounted files, all present")


class Process:
    def __init__(self, args: list[str], log: Path, env: dict[str, str], cwd: Path):
        self.log = log
        self.handle = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=cwd)

    def stop(self) -> None:
        if self.handle.poll() is None:
            self.handle.terminate()
            try:
                self.handle.wait(10)
            except subprocess.TimeoutExpired:
                self.handle.kill()
                self.handle.wait()


class TlsFront:
    """HTTPS on a loopback port with setup.sh's Portcullis certificate, passed through to
    Portcullis's plain HTTP port: the trust that compose.yaml sets up (the registry's
    SSL_CERT_FILE=ca.crt for its notifications, Portcullis's SSL_CERT_FILE=trust.pem for
    `portcullis health`) is then exercised by those very clients."""

    def __init__(self, cert: Path, key: Path, backend_port: int):
        import asyncio
        import threading

        self.port = free_port()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.loop = asyncio.new_event_loop()

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        async def serve(reader, writer):
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend_port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        async def start():
            return await asyncio.start_server(serve, "127.0.0.1", self.port, ssl=context)

        self.server = self.loop.run_until_complete(start())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def wait_for(what: str, probe, seconds: float = 30) -> object:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            answer = probe()
            if answer:
                return answer
        except (OSError, urllib.error.URLError, ValueError) as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what} ({last})")


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         context: ssl.SSLContext | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def end_to_end(work: Path, binary: str, registry_bin: str, scratch: Path) -> None:
    secrets = work / "secrets"
    pport, rport = free_port(), free_port()
    portcullis_url = f"http://127.0.0.1:{pport}"
    registry_url = f"https://127.0.0.1:{rport}"
    # The generated configuration, with what Compose would provide swapped for this
    # machine: the listen address, the storage and certificate paths, the URLs of
    # Portcullis (no name resolution for the host name here).
    config = yaml.safe_load((secrets / "registry-config.yml").read_text())
    config["http"]["addr"] = f"127.0.0.1:{rport}"
    config["http"]["tls"] = {"certificate": str(work / "certs/registry.crt"),
                             "key": str(secrets / "registry-tls.key")}
    config["storage"]["filesystem"]["rootdirectory"] = str(scratch / "blobs")
    config["auth"]["token"]["rootcertbundle"] = str(secrets / "token.crt")
    config["auth"]["token"]["realm"] = f"{portcullis_url}/v2/token"
    config_path = scratch / "registry.yml"

    base_env = {"PATH": os.environ["PATH"], "HOME": str(scratch)}
    portcullis_env = {**base_env, "PORTCULLIS_SECRETS_DIR": str(secrets),
                      "PORTCULLIS_DATA_DIR": str(scratch / "data"),
                      # Instead of the compose file's PostgreSQL (an environment variable
                      # wins over the secrets folder's file).
                      "PORTCULLIS_DATABASE_URL": f"sqlite:{scratch / 'portcullis.db'}",
                      "PORTCULLIS_MACHINE_FQDN_VALUE": HOST,
                      "PORTCULLIS_SERVER_LISTEN": f"127.0.0.1:{pport}",
                      "PORTCULLIS_LOG": "warn"}
    tls = ssl.create_default_context(cafile=str(work / "certs/ca.crt"))
    processes: list = []
    try:
        processes.append(Process([binary, "serve"], scratch / "portcullis.log", portcullis_env, scratch))
        wait_for("portcullis", lambda: http("GET", f"{portcullis_url}/readyz")[0] == 200)
        front = TlsFront(work / "certs/portcullis.crt", secrets / "portcullis-tls.key", pport)
        processes.append(front)
        health = run(binary, "health", "--url", f"https://localhost:{front.port}",
                     env={**portcullis_env, "SSL_CERT_FILE": str(work / "certs/trust.pem")}, cwd=scratch)
        if health.returncode != 0:
            fail(f"portcullis health over HTTPS with SSL_CERT_FILE=trust.pem (the compose health check): "
                 f"{health.stdout}{health.stderr}")
        else:
            ok("`portcullis health` trusts certs/portcullis.crt through SSL_CERT_FILE=certs/trust.pem")
        # The registry notifies over HTTPS, trusting only the test CA, as in compose.yaml.
        config["notifications"]["endpoints"][0]["url"] = f"https://127.0.0.1:{front.port}/v2/webhooks/events"
        config_path.write_text(yaml.safe_dump(config))
        processes.append(Process([registry_bin, "serve", str(config_path)], scratch / "registry.log",
                                 {**base_env, "SSL_CERT_FILE": str(work / "certs/ca.crt")}, scratch))
        status, headers, _ = wait_for("the registry", lambda: http("GET", f"{registry_url}/v2/", context=tls))
        challenge = headers.get("Www-Authenticate", "")
        if status != 401 or f'realm="{portcullis_url}/v2/token"' not in challenge or 'service="registry:5000"' not in challenge:
            fail(f"registry /v2/ answered {status} {challenge!r}")

        status, _, body = http("POST", f"{portcullis_url}/api/v1/users/bootstrap",
                               json.dumps({"user": {"username": "admin", "email": "admin@example.com",
                                                    "password": "check-deploy-password"}}).encode(),
                               {"Content-Type": "application/json"})
        api_token = json.loads(body)["plain_token"]
        created = run(binary, "admin", "create-registry", "--name", "main", "--hostname", "registry:5000",
                      "--use-ssl", "--external-hostname", f"127.0.0.1:{rport}", "--force",
                      env=portcullis_env, cwd=scratch)
        if created.returncode != 0:
            raise RuntimeError(f"create-registry: {created.stderr.strip()}")
        basic = base64.b64encode(b"admin:check-deploy-password").decode()
        status, _, body = http("GET", f"{portcullis_url}/v2/token?service=registry:5000"
                                      "&scope=repository:admin/check:pull,push",
                               headers={"Authorization": f"Basic {basic}"})
        bearer = {"Authorization": f"Bearer {json.loads(body)['token']}"}

        # Push an image: its config blob, then a manifest without layers.
        blob = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        status, headers, _ = http("POST", f"{registry_url}/v2/admin/check/blobs/uploads/", b"",
                                  bearer, context=tls)
        if status != 202:
            raise RuntimeError(f"the registry refused Portcullis's token: {status}")
        location = headers["Location"]
        location = location if location.startswith("http") else registry_url + location
        sep = "&" if "?" in location else "?"
        status, _, _ = http("PUT", f"{location}{sep}digest={digest}", blob,
                            {**bearer, "Content-Type": "application/octet-stream"}, context=tls)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": digest, "size": len(blob)},
                               "layers": []}).encode()
        status, _, answer = http("PUT", f"{registry_url}/v2/admin/check/manifests/v1", manifest,
                                 {**bearer, "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                                 context=tls)
        if status != 201:
            raise RuntimeError(f"manifest push: {status} {answer[:300]!r}")
        ok("the registry, configured by setup.sh, takes a push with a token Portcullis signed with secrets/token.key")

        def pushed_event():
            status, _, body = http("GET", f"{portcullis_url}/api/v1/events?action=push",
                                   headers={"Portus-Auth": f"admin:{api_token}"})
            events = json.loads(body) if status == 200 else []
            return [e for e in events if e["repository"] == "admin/check" and e.get("tag") == "v1"]

        events = wait_for("the registry's notification in Portcullis", pushed_event)
        ok(f"the registry's notification (HTTPS trusting certs/ca.crt, Bearer secret from setup.sh) "
           f"reached Portcullis: event {events[0]['action']} {events[0]['repository']}:{events[0]['tag']}")
    except (RuntimeError, KeyError, json.JSONDecodeError) as e:
        fail(f"end to end: {e}")
        for p in processes:
            if isinstance(p, Process):
                print(f"--- {p.log.name}\n" + p.log.read_text()[-3000:])
    finally:
        for p in processes:
            p.stop()


def main() -> int:
    example, binary, registry_bin = sys.argv[1:]
    podman_compose = str(Path(sys.executable).with_name("podman-compose"))
    with tempfile.TemporaryDirectory(prefix="check-compose-") as d:
        work, scratch = Path(d, "compose"), Path(d, "scratch")
        scratch.mkdir()
        work.mkdir()
        for name in ("compose.yaml", "setup.sh"):
            shutil.copy2(Path(example, name), work / name)
        try:
            setup(work, binary)
        except RuntimeError as e:
            fail(str(e))
            return 1
        check_files(work)
        check_podman_compose(work, podman_compose)
        end_to_end(work, binary, registry_bin, scratch)
    if failures:
        print(f"compose: {len(failures)} failure(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
