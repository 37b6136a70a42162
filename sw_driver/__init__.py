"""sw_driver"""
