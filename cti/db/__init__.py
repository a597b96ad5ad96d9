"""cti.db"""
