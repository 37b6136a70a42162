"""sim_models"""
