//! Orthanc's JSON answers, typed: only the fields the edge uses (patient tags are never read).

use serde::Deserialize;

use crate::ids::OrthancId;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StudyInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub is_stable: bool,
    #[serde(default)]
    pub series: Vec<String>,
    #[serde(default)]
    pub main_dicom_tags: StudyTags,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StudyTags {
    #[serde(default, rename = "StudyInstanceUID")]
    pub study_instance_uid: Option<String>,
    #[serde(default)]
    pub study_description: Option<String>,
    #[serde(default)]
    pub study_date: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeriesInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub instances: Vec<String>,
    #[serde(default)]
    pub main_dicom_tags: SeriesTags,
    #[serde(default)]
    pub parent_study: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeriesTags {
    #[serde(default)]
    pub modality: Option<String>,
    #[serde(default)]
    pub series_description: Option<String>,
    #[serde(default)]
    pub series_number: Option<String>,
    #[serde(default, rename = "SeriesInstanceUID")]
    pub series_instance_uid: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub index_in_series: Option<u64>,
    #[serde(default)]
    pub main_dicom_tags: InstanceTags,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceTags {
    #[serde(default)]
    pub instance_number: Option<String>,
}

/// One answer of `POST /tools/lookup`.
#[derive(Debug, Clone, Deserialize)]
pub struct LookupHit {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Type")]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Changes {
    #[serde(default)]
    pub changes: Vec<Change>,
    pub done: bool,
    pub last: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub change_type: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub seq: u64,
}

/// The representative ("middle") instance of a series: by `IndexInSeries`, else by
/// instance number, else Orthanc's order.
pub fn middle_instance(instances: &[InstanceInfo]) -> Option<&InstanceInfo> {
    let mut sorted: Vec<&InstanceInfo> = instances.iter().collect();
    let number = |i: &InstanceInfo| {
        i.main_dicom_tags.instance_number.as_deref().and_then(|n| n.trim().parse::<i64>().ok())
    };
    if sorted.iter().all(|i| i.index_in_series.is_some()) {
        sorted.sort_by_key(|i| i.index_in_series);
    } else if sorted.iter().all(|i| number(i).is_some()) {
        sorted.sort_by_key(|i| number(i));
    }
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, index: Option<u64>, number: Option<&str>) -> InstanceInfo {
        InstanceInfo {
            id: id.into(),
            index_in_series: index,
            main_dicom_tags: InstanceTags { instance_number: number.map(Into::into) },
        }
    }

    #[test]
    fn middle_by_index_then_number() {
        let by_index = [inst("c", Some(3), None), inst("a", Some(1), None), inst("b", Some(2), None)];
        assert_eq!(middle_instance(&by_index).unwrap().id, "b");
        let by_number =
            [inst("x", None, Some("10")), inst("y", None, Some("2")), inst("z", None, Some(" 5"))];
        assert_eq!(middle_instance(&by_number).unwrap().id, "z");
        let four = [
            inst("a", Some(1), None),
            inst("b", Some(2), None),
            inst("c", Some(3), None),
            inst("d", Some(4), None),
        ];
        assert_eq!(middle_instance(&four).unwrap().id, "b");
        assert!(middle_instance(&[]).is_none());
    }

    #[test]
    fn parses_orthanc_shapes_and_ignores_patient_tags() {
        let study: StudyInfo = serde_json::from_str(
            r#"{"ID":"s","IsStable":true,"Series":["a","b"],"Type":"Study",
                "MainDicomTags":{"StudyDescription":"CHEST","StudyInstanceUID":"1.2"},
                "PatientMainDicomTags":{"PatientName":"Doe^Jane"}}"#,
        )
        .unwrap();
        assert_eq!(study.series.len(), 2);
        assert_eq!(study.main_dicom_tags.study_description.as_deref(), Some("CHEST"));
        let changes: Changes = serde_json::from_str(
            r#"{"Changes":[{"ChangeType":"StableStudy","ID":"x","Path":"/studies/x","ResourceType":"Study","Seq":7,"Date":"20260101T000000"}],"Done":true,"Last":7}"#,
        )
        .unwrap();
        assert_eq!(changes.changes[0].seq, 7);
    }
}

/// Where a resource sits in Orthanc's hierarchy, and its DICOM UID (when Orthanc has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The series of an instance, the study of a series; `None` for a study.
    pub parent: Option<OrthancId>,
    pub uid: Option<String>,
}

/// `GET /{instances|series|studies}/{id}`, the fields `Node` needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RawNode {
    #[serde(default)]
    pub parent_series: Option<String>,
    #[serde(default)]
    pub parent_study: Option<String>,
    #[serde(default)]
    pub main_dicom_tags: NodeTags,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct NodeTags {
    #[serde(rename = "SOPInstanceUID", default)]
    pub sop_instance_uid: Option<String>,
    #[serde(rename = "SeriesInstanceUID", default)]
    pub series_instance_uid: Option<String>,
    #[serde(rename = "StudyInstanceUID", default)]
    pub study_instance_uid: Option<String>,
}
