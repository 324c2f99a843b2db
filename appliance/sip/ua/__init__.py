"""The user-agent role of the SIP stack: what the box sends as a client (RFC 3261 §8.1).

Client digest authentication, a registration client, OPTIONS keep-alives and the client side of
one INVITE. Trunks and the analog gateway's per-port user agents are built on these; nothing
here knows of trunks, the dial plan or the store.
"""
