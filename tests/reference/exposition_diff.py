#!/usr/bin/env python3
"""Reference results for the exposition parser's differential test.

For every input in tests/exposition_corpus/ (`*.prom` is Prometheus text 0.0.4, `*.om`
is OpenMetrics 1.0) this parses the file with the Python Prometheus client
(`prometheus_client.parser.text_string_to_metric_families` for text,
`prometheus_client.openmetrics.parser.text_string_to_metric_families` for OpenMetrics)
and writes `<input>.json` beside it:

    {"parser": "prometheus_client 0.26.0", "format": "text" | "openmetrics",
     "ok": true, "families": [
        {"name", "type", "help", "unit",
         "samples": [{"name", "labels": [[k, v], ...sorted],
                      "value": "<repr(float)>", "timestamp_ms": int | null,
                      "exemplar": null | {"labels", "value", "timestamp_ms"}}]}]}
    or {"parser": ..., "format": ..., "ok": false, "error": "<message>"}

Normalisation, so that the JSON states what was parsed rather than how the client
stores it:
- values are `repr(float(v))` ("nan", "inf", "-inf" included) so NaN and infinities
  survive JSON; the Rust side parses them back and compares bit for bit (NaN = NaN);
- labels are sorted [name, value] pairs;
- timestamps are integer milliseconds: the text parser returns seconds (ms / 1000), the
  OpenMetrics parser a (sec, nsec) pair; sub-millisecond digits are truncated;
- the text parser returns every sample without HELP/TYPE as its own one-sample family;
  adjacent such families with the same name are merged into one, as the text format
  (and the Go parser) groups consecutive lines of one metric.
One mapping is left to the Rust test, because it cannot be undone here: the client
stores a text-format counter under its OpenMetrics data model (family name without
`_total`, samples renamed to end in `_total`). The Rust test applies that same mapping
to its own result before comparing.

Run: python3 tests/reference/exposition_diff.py   (needs `pip install prometheus_client`)
"""

import json
import math
import pathlib
import sys

from prometheus_client.openmetrics import parser as om_parser
from prometheus_client import parser as text_parser
from prometheus_client.samples import Timestamp

CORPUS = pathlib.Path(__file__).resolve().parent.parent / "exposition_corpus"


def value_str(v):
    return repr(float(v))


def timestamp_ms(ts, fmt):
    if ts is None:
        return None
    if isinstance(ts, Timestamp):
        return ts.sec * 1000 + int(ts.nsec / 1_000_000)
    if fmt == "text":
        # The text parser divided integer milliseconds by 1000; undo that.
        return int(round(ts * 1000))
    return int(math.trunc(ts * 1000))


def labels(d):
    return sorted([k, v] for k, v in (d or {}).items())


def family_json(m, fmt):
    samples = []
    for s in m.samples:
        ex = None
        if s.exemplar is not None:
            ex = {
                "labels": labels(s.exemplar.labels),
                "value": value_str(s.exemplar.value),
                "timestamp_ms": timestamp_ms(s.exemplar.timestamp, fmt),
            }
        samples.append(
            {
                "name": s.name,
                "labels": labels(s.labels),
                "value": value_str(s.value),
                "timestamp_ms": timestamp_ms(s.timestamp, fmt),
                "exemplar": ex,
            }
        )
    return {
        "name": m.name,
        "type": m.type,
        "help": m.documentation,
        "unit": m.unit,
        "samples": samples,
    }


def merge_untyped_singletons(families):
    out = []
    for f in families:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev["name"] == f["name"]
            and prev["type"] == f["type"] == "unknown"
            and prev["help"] == f["help"] == ""
        ):
            prev["samples"].extend(f["samples"])
        else:
            out.append(f)
    return out


def reference(path):
    fmt = "openmetrics" if path.suffix == ".om" else "text"
    text = path.read_text(encoding="utf-8")
    parse = (
        om_parser.text_string_to_metric_families
        if fmt == "openmetrics"
        else text_parser.text_string_to_metric_families
    )
    result = {"parser": f"prometheus_client {prometheus_client_version()}", "format": fmt}
    try:
        families = [family_json(m, fmt) for m in parse(text)]
    except Exception as e:  # the client signals every rejection as an exception
        result.update({"ok": False, "error": f"{type(e).__name__}: {e}"})
        return result
    if fmt == "text":
        families = merge_untyped_singletons(families)
    result.update({"ok": True, "families": families})
    return result


def prometheus_client_version():
    from importlib.metadata import version

    return version("prometheus_client")


def main():
    inputs = sorted(p for p in CORPUS.iterdir() if p.suffix in (".prom", ".om"))
    if not inputs:
        sys.exit(f"no corpus files in {CORPUS}")
    for p in inputs:
        out = reference(p)
        target = p.with_name(p.name + ".json")
        target.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        status = "ok" if out["ok"] else "rejected: " + out["error"][:80]
        print(f"{p.name}: {status}")


if __name__ == "__main__":
    main()
