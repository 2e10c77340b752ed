"""Rehearsals: the simulator panels (ablation, implant, resection) and their interactive tools."""
