"""cti.web"""
