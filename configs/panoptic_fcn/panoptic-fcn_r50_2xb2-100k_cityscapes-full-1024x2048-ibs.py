# Panoptic FCN R50, Cityscapes, full-image training + IBS. IBS compares each image with another
# image of the same process, so it needs >= 2 images per GPU: the same 4 images per iteration as
# the full-image baseline, laid out as 2 GPUs x 2 images. Full images are not paired, so the
# partner is a random other image of the per-GPU batch (docs/method.md).
_base_ = ['./panoptic-fcn_r50_4xb1-100k_cityscapes-full-1024x2048.py']

num_gpus = 2
images_per_gpu = 2  # 2 GPUs x 2 images = 4 images per iteration, as the baseline
segment_weight = 4.0  # MODEL.LOSS_WEIGHT.SEGMENT (as the base)
ibs_weight = 1.0  # IBS_WEIGHT: lambda_IBS 1 on Cityscapes (supplementary)
ibs_partner = 'random'

train_dataloader = dict(batch_size=images_per_gpu)
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
model = dict(
    panoptic_head=dict(
        loss_ibs=dict(
            _delete_=True,  # the base's loss_ibs is None, not a dict to merge into
            type='IBSLoss',
            partner=ibs_partner,
            num_points=None,
            loss_weight=segment_weight * ibs_weight)))
