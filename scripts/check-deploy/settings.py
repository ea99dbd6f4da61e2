"""Checks that every Portcullis setting the deployment files give is one the binary
knows, for scripts/check-deploy.sh: the environment of compose.yaml, the systemd
environment file (its commented-out lines too) and the environment and config.yml of
each rendered Helm case are handed to `portcullis config show`, which must accept them
without a warning (an unknown variable or key is only a warning at start, so a typo
would otherwise go unnoticed), and must list each variable as the source of a value.

Usage: python settings.py PORTCULLIS_BIN COMPOSE_YAML SYSTEMD_ENV RENDERED_DIR
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

failures: list[str] = []
# Variables that are not configuration keys.
NOT_KEYS = {"PORTCULLIS_CONFIG", "PORTCULLIS_SECRETS_DIR", "PORTCULLIS_LOG"}


def config_show(binary: str, source: str, env: dict[str, str], config_yml: str | None) -> None:
    with tempfile.TemporaryDirectory() as d:
        env = dict(env)
        # Files the settings point at, with content of the right kind.
        for name, value in list(env.items()):
            if name.endswith("_FILE"):
                path = Path(d, name)
                path.write_text(f"sqlite:{d}/x.db\n" if "DATABASE_URL" in name else "secret-for-the-check\n")
                env[name] = str(path)
        if config_yml is not None:
            Path(d, "config.yml").write_text(config_yml)
            env["PORTCULLIS_CONFIG"] = str(Path(d, "config.yml"))
        else:
            env.pop("PORTCULLIS_CONFIG", None)
        env.update(PATH="/usr/bin:/bin", PORTCULLIS_DATA_DIR=str(Path(d, "data")), PORTCULLIS_LOG="warn")
        answer = subprocess.run([binary, "config", "show"], env=env, cwd=d, capture_output=True, text=True)
    warnings = [line for line in answer.stderr.splitlines() if line.strip()]
    names = sorted(n for n in env if n.startswith(("PORTCULLIS_", "PORTUS_")))
    # Each variable must show up as the source of a value: one that is silently
    # skipped would be a setting that does nothing.
    unused = [n for n in names if n not in NOT_KEYS and f": environment {n}" not in answer.stdout]
    warnings += [f"{n} is the source of no configuration value (ignored)" for n in unused]
    if answer.returncode != 0 or warnings:
        failures.append(source)
        print(f"FAIL settings: {source}: portcullis config show said:\n  " + "\n  ".join(warnings or [answer.stdout]))
    else:
        print(f"ok   settings: {source}: {len(names)} variables{' and config.yml' if config_yml else ''} accepted")


def main() -> int:
    binary, compose_yaml, systemd_env, rendered = sys.argv[1:]

    compose = yaml.safe_load(Path(compose_yaml).read_text())
    env = {k: re.sub(r"\$\{PORTCULLIS_HOSTNAME[^}]*\}", "portcullis.check.test", str(v))
           for k, v in compose["x-portcullis"]["environment"].items()}
    config_show(binary, "compose.yaml", env, None)

    env = {}
    for line in Path(systemd_env).read_text().splitlines():
        match = re.match(r"^#?(PORTCULLIS_[A-Z0-9_]+)=(.*)$", line)
        if match:
            env[match.group(1)] = match.group(2)
    config_show(binary, "systemd portcullis.env (every line, commented ones too)", env, None)

    for case in sorted(Path(rendered).glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(case.read_text()) if d]
        config_yml = next(d["data"]["config.yml"] for d in docs
                          if d["kind"] == "ConfigMap" and "config.yml" in d.get("data", {})
                          and not d["metadata"]["name"].endswith("-registry"))
        for dep in (d for d in docs if d["kind"] == "Deployment"):
            for c in dep["spec"]["template"]["spec"]["containers"]:
                env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
                config_show(binary, f"helm {case.stem} {dep['metadata']['name']}", env, config_yml)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
