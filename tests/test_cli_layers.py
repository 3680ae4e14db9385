"""`circuits layers` / `circuits unit` against the graph they print."""

import json

from circuits import cli, graph


def test_layers_json_matches_graph(capsys):
    assert cli.main(["layers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == graph.names()
    by = {r["name"]: r for r in rows}
    assert by["mixed3b_5x5"]["concat"] == "mixed3b" and by["mixed3b_5x5"]["offset"] == 320
    assert by["mixed3b_5x5"]["rf_size"] == 91 and by["mixed3b_5x5"]["rf_stride"] == 8


def test_unit_and_bad_unit(capsys):
    assert cli.main(["unit", "mixed3b:379"]) == 0
    out = capsys.readouterr().out
    assert "mixed3b_5x5 channel 59" in out and "91 px" in out
    assert cli.main(["unit", "mixed3c:1"]) == 2
    assert "did you mean" in capsys.readouterr().err
