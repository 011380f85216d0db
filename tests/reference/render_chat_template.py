#!/usr/bin/env python3
"""Renders chat templates the way Hugging Face transformers' apply_chat_template does, for the tests.

transformers compiles a tokenizer's chat_template in jinja2's ImmutableSandboxedEnvironment with trim_blocks and
lstrip_blocks, and gives it a raise_exception function; this script does the same with Debian's python3-jinja2, so
the C# tests can check that the template we write into an exported tokenizer_config.json renders exactly the text we
trained on.

Usage: render_chat_template.py REQUEST.json
REQUEST: {"template": str, "bos_token": str, "cases": [{"messages": [{"role", "content"}], "add_generation_prompt": bool}]}
Prints a JSON list with, per case, {"text": rendered} or {"error": message} when the template raised.
"""
import json
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise TemplateError(message)


def main(path):
    with open(path, encoding="utf-8") as f:
        request = json.load(f)
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    template = environment.from_string(request["template"])
    results = []
    for case in request["cases"]:
        try:
            text = template.render(messages=case["messages"], add_generation_prompt=case["add_generation_prompt"],
                                   bos_token=request["bos_token"])
            results.append({"text": text})
        except TemplateError as error:
            results.append({"error": str(error)})
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1])
