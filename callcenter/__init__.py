"""callcenter: a telephony-first call center engine driving Asterisk over AMI and FastAGI."""

__version__ = "0.1.0"
