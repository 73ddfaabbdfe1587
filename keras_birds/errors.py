class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def brief(e: BaseException, limit: int = 160, *, with_type: bool = False) -> str:
    """The first line of an exception's message, cut to `limit` characters, for one-line errors; the
    exception's type name when the message is empty (or in front of it, with_type=True)."""
    text = str(e).strip()
    first = text.splitlines()[0][:limit] if text else ""
    if not first:
        return type(e).__name__
    return f"{type(e).__name__}: {first}" if with_type else first
