"""Media engine: RTP and RTCP packets, codecs, DTMF (RFC 3550, RFC 4733, ITU-T G.711/G.722)."""
