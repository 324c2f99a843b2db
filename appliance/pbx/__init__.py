"""The pbx-core service: wires the SIP stack, the store and the control socket."""
