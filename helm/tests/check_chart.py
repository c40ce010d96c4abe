"""Usage: check_chart.py <path of the sinergi binary>

Renders and lints the Helm chart without a cluster or a helm binary, and validates every
rendered manifest against the Kubernetes API schemas.

Every values file in helm/sinergi/ci/ must render, lint clean (strict) and validate; every file
in helm/tests/invalid/ must be refused by the chart's values.schema.json.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
CHART = ROOT / "helm" / "sinergi"
KUBERNETES_VERSION = "1.34.0"
# Custom resources the Kubernetes schemas do not describe: checked for their shape only.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def fail(message: str) -> None:
    print(f"FAIL {message}", file=sys.stderr)
    sys.exit(1)


def check_custom(source: str, manifest: dict) -> None:
    spec = manifest.get("spec") or {}
    if not manifest.get("metadata", {}).get("name") or not spec.get("endpoints"):
        fail(f"{source}: {manifest['kind']} lacks a name or endpoints")


def check_server_config(source: str, configmap: dict) -> None:
    """The configuration file the chart renders must be one Sinergi accepts as it is."""
    binary = sys.argv[1]
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as file:
        file.write(configmap["data"]["sinergi.toml"])
        file.flush()
        # Only what the pod's environment adds to the file.
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SINERGI_")}
        environment["SINERGI_DATABASE_URL"] = "postgres://sinergi:x@db/sinergi"
        checked = subprocess.run(
            [binary, "config", "--config", file.name],
            capture_output=True, text=True, env=environment, check=False,
        )
    if checked.returncode != 0:
        fail(f"{source}: sinergi refuses the rendered configuration: {checked.stderr.strip()}")
    settings = json.loads(checked.stdout)
    if settings["migrate_on_start"] or not settings["health"]["probe_listen"]:
        fail(f"{source}: replicas must leave migrations to the job and serve probes")


def validate(values_file: Path) -> int:
    values = yaml.safe_load(values_file.read_text()) or {}
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    if report.get("errors") or problems:
        fail(f"{values_file.name}: lint: {report.get('errors')} {problems}")
    chart = helm.Chart.load(str(CHART))
    rendered = chart.render(values, name="sinergi", namespace="sinergi", is_install=True)
    count = 0
    kinds = set()
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for manifest in yaml.safe_load_all(text):
            if not manifest:
                continue
            count += 1
            kinds.add(manifest["kind"])
            source = f"{values_file.name}: {template}"
            if manifest["kind"] == "ConfigMap":
                check_server_config(source, manifest)
            if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_KINDS:
                check_custom(source, manifest)
                continue
            try:
                kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                fail(f"{source}: {error.message} at {list(error.path)}")
    if count == 0:
        fail(f"{values_file.name}: nothing rendered")
    print(f"ok   {values_file.name}: {count} manifests valid for Kubernetes "
          f"{KUBERNETES_VERSION} ({', '.join(sorted(kinds))})")
    return count


def refused(values_file: Path) -> None:
    values = yaml.safe_load(values_file.read_text()) or {}
    chart = helm.Chart.load(str(CHART))
    try:
        chart.render(values, name="sinergi", namespace="sinergi", is_install=True)
    except helm.HelmError as error:
        reasons = [line.strip("- ") for line in str(error).splitlines() if line.startswith("- ")]
        print(f"ok   {values_file.name} refused: {'; '.join(reasons) or str(error).strip()}")
        return
    fail(f"{values_file.name}: bad values were accepted")


def main() -> None:
    if len(sys.argv) != 2:
        fail("usage: check_chart.py <path of the sinergi binary>")
    valid = sorted((CHART / "ci").glob("*.yaml"))
    invalid = sorted((ROOT / "helm" / "tests" / "invalid").glob("*.yaml"))
    if not valid or not invalid:
        fail("no values files to check")
    for values_file in valid:
        validate(values_file)
    for values_file in invalid:
        refused(values_file)


if __name__ == "__main__":
    main()
