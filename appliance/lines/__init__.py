"""The analog gateway's side of the box: the line protocol spoken with a line-interface board,
board profiles, the serial, GPIO and ALSA drivers, a simulated board for tests and demos, and
the analog signals (tones, caller ID, pulse dialling).

`lines` uses `sip` and `media`, never `pbx`: every port is a user agent of its own."""
