L="Y:1/2+r0;Y:1/2+r1,Y:1/2+r0,Y:1/2+r3,S:1/2+r0,S:1/2+r1;Y:1/2+r3,Y:1/2+r1,Y:3/4+r1,S:1/2+r1,S:3/4+r0;Y:3/4+r1,Y:1/2+r3,Y:1+r1,S:3/4+r0,S:1/2+r3;Y:1+r1,Y:3/4+r1,Y:1+r2,S:1+r0,S:3/4+r1;Y:1+r2,Y:1+r1,Y:1+r3,S:1+r1,S:1+r0;Y:1+r3,Y:1+r2,Y:5/4+r3,S:1+r2,S:1+r1;Y:5/4+r3,Y:1+r3,Y:1+r4,S:1+r3,S:1+r2"
F="Y:1/2+r0,Y:1/2+r1,Y:1/2+r3,Y:3/4+r1,Y:1+r1,Y:1+r2,Y:1+r3,Y:5/4+r3"
# mix_*_e0.jsonl: ../../point_choice/{tune,kodak}_e0_rows.jsonl with "Y:" before each point, then ../sweep_jointS2_{tune,kodak}_e0_rows.jsonl with "S:"
