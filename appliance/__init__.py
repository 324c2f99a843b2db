"""PBX appliance firmware: SIP, media, dial plan, analog lines and the setup page."""

__version__ = "0.1.0"
