"""cti.calls"""
