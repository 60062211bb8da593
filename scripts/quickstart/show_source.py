"""Prints the _source of a GET /index/_doc/id answer (stdin) as indented JSON, keeping every
number exactly as the server sent it (186.30 stays 186.30; Python floats would print 186.3)."""
import json
import sys


class Number(str):
    """A JSON number, kept as its text."""


def dump(v, indent=0):
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dump(x, indent + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list):
        return "[" + ", ".join(dump(x, indent + 1) for x in v) + "]"
    if isinstance(v, Number):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


answer = json.load(sys.stdin, parse_float=Number, parse_int=Number)
print(dump(answer["_source"]))
