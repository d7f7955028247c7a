"""Print a POT fragment with the engine's error messages (libalpm's strerror texts).

They live in a table, not in ``_()`` calls, so xgettext cannot see them; reading the
table itself keeps the template complete when codes are added.
"""

from __future__ import annotations

import json
import os
import sys

from alpmd.engine.errors import ErrorCode
from alpmd.i18n import reset

#: Fixed first parts of messages shaped ``head: detail`` that the engine and the daemon
#: build (``target not found: foo``); :func:`alpmd.i18n.translate` translates the head.
MESSAGE_HEADS = ("target not found", "package not found", "duplicate target",
                 "could not find or read file", "missing PGP signature")


def main() -> int:
    os.environ["LC_ALL"] = "C"  # the English source texts, whatever the caller's language
    reset()
    seen: set[str] = set()
    out = sys.stdout
    out.write('msgid ""\nmsgstr ""\n"Project-Id-Version: alpmd\\n"\n'
              '"MIME-Version: 1.0\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
              '"Content-Transfer-Encoding: 8bit\\n"\n\n')
    entries = [(f"error code {code.value}", code.strerror) for code in ErrorCode]
    entries += [("the fixed part of 'head: detail' messages", head) for head in MESSAGE_HEADS]
    for comment, text in entries:
        if text in seen:
            continue
        seen.add(text)
        out.write(f"#. {comment}\nmsgid {json.dumps(text, ensure_ascii=False)}\n"
                  'msgstr ""\n\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
