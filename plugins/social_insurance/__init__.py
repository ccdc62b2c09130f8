"""Social insurance (BHXH) plugin: health-insurance cards, funeral allowance, insurance-number look-up."""
