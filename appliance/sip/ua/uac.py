"""What every request the box sends outside a dialog shares (RFC 3261 §8.1.1).

The mandatory header fields in their usual order, a Call-ID, and telling the 408 that a client
transaction makes up when Timer B or F fires from a 408 that a peer sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from appliance.sip.dialog import new_branch
from appliance.sip.message import HeaderField, Request, Response
from appliance.sip.transaction import ClientTransaction, State

MAX_FORWARDS = "70"


def via_host(via: str) -> str:
    """The host of a Via sent-by given as `TRANSPORT host:port` (as in `Dialog.via`)."""
    parts = via.split()
    if len(parts) != 2:
        raise ValueError(f"Via sent-by must read 'TRANSPORT host:port', not {via!r}")
    hostport = parts[1]
    if hostport.startswith("["):
        return hostport[: hostport.find("]") + 1]
    return hostport.rpartition(":")[0] or hostport


def new_call_id(via: str) -> str:
    return f"{uuid.uuid4().hex}@{via_host(via)}"


def request(
    method: str,
    uri: str,
    *,
    via: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Request:
    """A request outside any dialog (§8.1.1), with a new branch and `rport` (RFC 3581)."""
    fields = [
        HeaderField("Via", f"SIP/2.0/{via};branch={new_branch()};rport"),
        HeaderField("Max-Forwards", MAX_FORWARDS),
        HeaderField("From", from_),
        HeaderField("To", to),
        HeaderField("Call-ID", call_id),
        HeaderField("CSeq", f"{cseq} {method}"),
    ]
    fields.extend(HeaderField(n, v) for n, v in headers)
    fields.append(HeaderField("Content-Length", str(len(body))))
    return Request(headers=fields, body=body, method=method, uri=uri)


def timed_out(txn: ClientTransaction, response: Response) -> bool:
    """True if `response` is the 408 that `txn` made itself because no answer came in time.

    The transaction terminates before it delivers that 408, while a response that arrived is
    delivered with the transaction still Completed, Accepted or Proceeding.
    """
    return response.status == 408 and txn.state is State.TERMINATED


def status_text(response: Response) -> str:
    """`403 Forbidden`, as the user of a client shows the last answer."""
    return f"{response.status} {response.reason}".strip()
