DROP TABLE IF EXISTS checkpoints_projection;
DROP TABLE IF EXISTS sortie_dependencies;
DROP TABLE IF EXISTS sorties_projection;
DROP TABLE IF EXISTS missions_projection;
DROP TABLE IF EXISTS specialist_capabilities;
DROP TABLE IF EXISTS specialists_projection;
DROP TABLE IF EXISTS fleet_projection_versions;
