# Panoptic FCN R50, Cityscapes, crop-based training: the baseline of the IBS paper (README row
# "no crop sampling, no IBS"). PanopticFCN-IBS
# configs/cityscapes/PanopticFCN-R50-cityscapes.yaml: SGD lr 0.02 (BASE_LR), weight decay 1e-4,
# poly 0.9 over 65k iterations (MAX_ITER) with 1000 warm-up iterations, 32 crops of 512x1024 per
# iteration (IMS_PER_BATCH) from a 0.5-2.0 random resize, horizontal flip, C = 256
# (FEATURE_ENCODER.CONVS_DIM), LOSS_WEIGHT.SEGMENT 4.0.
_base_ = [
    '../_base_/models/panoptic-fcn_r50_fpn.py', '../_base_/datasets/cityscapes_panoptic_crop.py',
    '../_base_/schedules/sgd-poly_65k.py', '../_base_/default_runtime.py'
]

num_gpus = 8
images_per_gpu = 4  # 8 GPUs x 4 images = IMS_PER_BATCH 32
lr = 0.02  # SOLVER.BASE_LR for 32 images

train_dataloader = dict(batch_size=images_per_gpu)
optim_wrapper = dict(optimizer=dict(lr=lr))
# With fewer GPUs, `--auto-scale-lr` scales lr linearly to the real batch (32 is the release's).
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
