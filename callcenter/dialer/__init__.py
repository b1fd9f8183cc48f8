"""The outbound dialer: campaigns, leads, pacing, and the service that places calls."""
