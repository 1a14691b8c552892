# CondInst R50, Cityscapes instance segmentation (8 thing classes), crop-based training: the IBS
# paper's Cityscapes crop protocol (the data, batch and schedule of
# configs/panoptic_fcn/panoptic-fcn_r50_8xb4-65k_cityscapes-crop-512x1024.py: 32 crops of 512x1024
# per iteration from a 0.5-2.0 random resize, flip, SGD with poly decay over 65k iterations and
# 1000 warm-up iterations) on mmdet's CondInst. The paper has no CondInst experiment: this is the
# baseline of the CondInst + IBS config. From mmdet's CondInst recipe: the model, SGD momentum 0.9,
# weight decay 1e-4, no gradient clipping and lr 0.01 for 16 images, scaled linearly to 0.02 for
# 32. Evaluated with the official Cityscapes instance AP (CityScapesMetric).
_base_ = [
    '../_base_/models/condinst_r50_fpn_cityscapes.py',
    '../_base_/datasets/cityscapes_instance_crop.py', '../_base_/schedules/sgd-poly_65k.py',
    '../_base_/default_runtime.py'
]

num_gpus = 8
images_per_gpu = 4  # 8 GPUs x 4 images = 32
lr = 0.02  # mmdet's 0.01 for 16 images, x 32 / 16

train_dataloader = dict(batch_size=images_per_gpu)
optim_wrapper = dict(optimizer=dict(lr=lr), clip_grad=None)
# With fewer GPUs, `--auto-scale-lr` scales lr linearly to the real batch.
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
