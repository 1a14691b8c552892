# Panoptic FCN R50, Mapillary Vistas, crop sampling without IBS (ablation, docs/data.md):
# pairs of 1024x1024 crops of one uniformly drawn category at a shared target scale (the
# released Vistas values: short side 1024-6192, long side <= 9288).
_base_ = [
    '../_base_/models/panoptic-fcn_r50_fpn_mapillary.py',
    '../_base_/datasets/mapillary_panoptic_cropsampling.py',
    '../_base_/schedules/sgd-poly_150k.py', '../_base_/default_runtime.py'
]

num_gpus = 8
pairs_per_gpu = 2  # 2 pairs = 4 images per GPU; 8 x 4 = 32 images (the release's 16 pairs)
lr = 0.02  # SOLVER.BASE_LR for 32 images

train_dataloader = dict(batch_size=pairs_per_gpu)
optim_wrapper = dict(optimizer=dict(lr=lr))
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * pairs_per_gpu * 2)
