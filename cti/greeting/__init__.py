"""cti.greeting"""
