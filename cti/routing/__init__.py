"""cti.routing"""
