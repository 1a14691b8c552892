# Panoptic FCN R50, Cityscapes, crop sampling without IBS (an ablation: crop sampling alone,
# docs/data.md). Crop sampling replaces the crop-based data: each item
# is a pair of 512x1024 crops of one uniformly drawn category at a shared target scale; the
# optimiser, schedule and model are those of the crop-based baseline.
_base_ = [
    '../_base_/models/panoptic-fcn_r50_fpn.py',
    '../_base_/datasets/cityscapes_panoptic_cropsampling.py',
    '../_base_/schedules/sgd-poly_65k.py', '../_base_/default_runtime.py'
]

num_gpus = 8
pairs_per_gpu = 2  # 2 pairs = 4 images per GPU; 8 x 4 = 32 images (the release's 16 pairs)
lr = 0.02  # SOLVER.BASE_LR for 32 images

train_dataloader = dict(batch_size=pairs_per_gpu)
optim_wrapper = dict(optimizer=dict(lr=lr))
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * pairs_per_gpu * 2)
