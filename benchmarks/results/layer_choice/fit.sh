# The choice between layers, simulated from real .vqz files of both layers' sweeps: lambdas fitted
# on the 24 tuning photos (never Kodak), then applied to Kodak. Run from this folder.
set -e
python rows.py /tmp/layer_rows
R=/tmp/layer_rows
F="1/2+r0,1/2+r1,1/2+r3,3/4+r1,1+r1,1+r2,1+r3,5/4+r3"   # the fixed ladder (v5's own points)
L=$(cat ladder.txt)                                        # each point's variants, as in models/points.json
for K in 1 2 3 7; do for C in 0 0.03; do
  python ../../point_choice.py $R/tune_e0.jsonl $R/tune_e5.jsonl --ladder "$L" --fixed "$F" --fit --weights 100 \
    --ssim2-weight $C --keep $K --out grid/fit_tune_k${K}_c$C.json
  python ../../point_choice.py $R/kodak_e0.jsonl $R/kodak_e5.jsonl --ladder "$L" --fixed "$F" --lambdas grid/fit_tune_k${K}_c$C.json \
    --weight 100 --ssim2-weight $C --keep $K --bench ../kodak_refine5/points.csv --out grid/kodak_k${K}_c$C.json
done; done
