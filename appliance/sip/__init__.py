"""RFC 3261 SIP stack: message syntax, transports, transactions, registrar."""
